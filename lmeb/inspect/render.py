"""An ``Inspection`` (``lmeb.inspect.queries``) as text, JSON or one self-contained HTML page.

The page has no script and no external resource: every string from the data or the results files goes
through ``html.escape`` (quotes too), as the leaderboard escapes its titles, so a query or document
text such as ``</td><script>`` shows as text and cannot change the page.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from typing import Any

from lmeb.engine.metrics import MAIN_SCORE
from lmeb.errors import LmebError
from lmeb.inspect.queries import Hit, Inspection, ModelView

FORMATS = ("text", "json", "html")
SHOWN_METRICS = (MAIN_SCORE, "recall_at_10", "mrr_at_10", "R_cap_at_10")


def render(view: Inspection, fmt: str = "text") -> str:
    """``view`` as text, JSON or a standalone HTML page (one of ``FORMATS``)."""
    if fmt not in FORMATS:
        raise LmebError(f"unknown inspect format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt == "json":
        return json.dumps(asdict(view), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt == "html":
        return _html(view)
    return _text(view)


def _metrics(v: ModelView) -> str:
    return ", ".join(f"{m} {v.metrics[m]:.4f}" for m in SHOWN_METRICS if m in v.metrics)


def _rank(h: Hit) -> str:
    return "-" if h.rank is None else str(h.rank)


def _score(h: Hit) -> str:
    return "" if h.score is None else f"{h.score:.4f}"


def _head(view: Inspection) -> list[str]:
    lines = [f"{view.dataset}/{view.subset} ({view.setting}): {' vs '.join(view.models)}",
             f"instruction: {view.instruction if view.instruction is not None else 'none (wo_inst)'}",
             f"showing {view.selection}; top {view.k} retrieved; rank '-' = not in the kept top 100"]
    return lines + [f"note: {n}" for n in view.notes]


def _text(view: Inspection) -> str:
    lines = _head(view)
    for q in view.queries:
        lines += ["", f"query {q.query_id}: {q.text}"]
        for v in q.views:
            lines.append(f"  [{v.model}] {_metrics(v)}")
            lines.append("    relevant:")
            lines += [f"      rank {_rank(h):>4}  grade {h.grade}  {h.doc_id}  {h.excerpt}" for h in v.relevant]
            lines.append(f"    top {view.k}:")
            lines += [f"      {h.rank:>4}  {_score(h):>9}  {'R' if h.grade > 0 else ' '}  {h.doc_id}  {h.excerpt}"
                      for h in v.top]
    return "\n".join(lines) + "\n"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _hits_table(hits: list[Hit], relevant: bool) -> str:
    head = "<tr><th>rank</th><th>grade</th><th>id</th><th>excerpt</th></tr>" if relevant else \
        "<tr><th>rank</th><th>score</th><th>rel</th><th>id</th><th>excerpt</th></tr>"
    rows = []
    for h in hits:
        cls = ' class="rel"' if h.grade > 0 else ""
        if relevant:
            cells = (_rank(h), h.grade, h.doc_id, h.excerpt)
        else:
            cells = (_rank(h), _score(h), "yes" if h.grade > 0 else "", h.doc_id, h.excerpt)
        rows.append(f"<tr{cls}>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;max-width:110em}
.query{border-top:2px solid #888;margin-top:1.5em}.side{display:flex;gap:1.5em;align-items:flex-start}
.model{flex:1;min-width:0}table{border-collapse:collapse;font-size:.85em;width:100%}
td,th{border:1px solid #ccc;padding:.2em .4em;text-align:left;vertical-align:top}tr.rel td{background:#e6f4e6}
.note{color:#a40}"""


def _html(view: Inspection) -> str:
    parts = [f"<h1>{_e(view.dataset)}/{_e(view.subset)} ({_e(view.setting)})</h1>",
             f"<p>models: {_e(' vs '.join(view.models))}</p>"]
    parts += [f"<p>{_e(line)}</p>" for line in _head(view)[1:3]]
    parts += [f'<p class="note">{_e(n)}</p>' for n in view.notes]
    for q in view.queries:
        models = []
        for v in q.views:
            models.append(f'<div class="model"><h3>{_e(v.model)}</h3><p>{_e(_metrics(v))}</p>'
                          f"<h4>relevant</h4>{_hits_table(v.relevant, True)}"
                          f"<h4>top {view.k}</h4>{_hits_table(v.top, False)}</div>")
        parts.append(f'<section class="query" id="q-{_e(q.query_id)}"><h2>query {_e(q.query_id)}</h2>'
                     f'<p class="text">{_e(q.text)}</p><div class="side">{"".join(models)}</div></section>')
    title = _e(f"lmeb inspect: {view.dataset}/{view.subset}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
