"""A ``Table`` as aligned text, Markdown, CSV, LaTeX or JSON (like ranx's ``Report``: one value, many outputs).

Cells: numbers with the column's format (2 decimals by default), ``n/N*`` for an incomplete group
(n of N parts complete, no mean), ``-`` for no result (empty in CSV). md and LaTeX mark the best cell
per column bold and the second underlined (paper style). A ``Complete`` column (a row's complete
parts) is shown when some row is incomplete. The legend and the table's footnotes follow the table.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from lmeb.errors import LmebError
from lmeb.report.table import INCOMPLETE_MARK, MISSING, Column, Row, Table, as_table
from lmeb.safety import csv_cell

FORMATS = ("text", "md", "csv", "latex", "json")


def render(table: Any, fmt: str = "text") -> str:
    """``table`` (a Table, or a frame from ``lmeb.report.views.table``) in one of ``FORMATS``."""
    if fmt not in FORMATS:
        raise LmebError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    return {"text": _text, "md": _markdown, "csv": _csv, "latex": _latex, "json": _json}[fmt](as_table(table))


def best_marks(table: Any) -> dict[tuple[tuple[str, ...], Column], int]:
    """{(row labels, column): 1 best | 2 second}; see ``Table.best_marks``."""
    return as_table(table).best_marks()


def _label_columns(t: Table) -> tuple[list[str], list[list[str]], list[str]]:
    """Row-label headers, the label cells per row, and the Complete column (empty when all complete).

    A ``source`` label is shown only when some row is not a run (published rows beside runs).
    """
    keep = [i for i, name in enumerate(t.label_names) if name != "source" or any(r.labels[i] != "run" for r in t.rows)]
    headers = [t.label_names[i].capitalize() for i in keep]
    labels = [[r.labels[i] + (r.marks if i == 1 else "") for i in keep] for r in t.rows]
    counts = [r.complete for r in t.rows if r.complete]
    if not counts or all(c.split("/")[0] == c.split("/")[1] for c in counts):
        return headers, labels, []
    total = counts[0].split("/")[1]
    return headers, labels, [r.complete or f"{total}/{total}" for r in t.rows]


def _flat(col: Column) -> str:
    return f"{col[0]} {col[1]}".strip()


def _legend(t: Table, cov: list[str]) -> list[str]:
    parts = []
    if any(not c.complete for r in t.rows for c in r.cells.values()):
        parts.append(f"n/N{INCOMPLETE_MARK} = incomplete: only n of N parts complete, no mean computed")
    if cov:
        parts.append(f"Complete = complete {t.complete_unit} / all")
    return (["; ".join(parts)] if parts else []) + list(t.footnotes)


def _groups(columns: list[Column]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for g, _ in columns:
        if out and out[-1][0] == g:
            out[-1] = (g, out[-1][1] + 1)
        else:
            out.append((g, 1))
    return out


def _text(t: Table) -> str:
    headers, labels, cov = _label_columns(t)
    cols = t.columns
    cells = [[t.show(row, c) for c in cols] for row in t.rows]
    width = [max([len(c[1])] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    i = 0  # widen the last column of a group whose name is longer than its columns
    for g, k in _groups(cols):
        span = sum(width[i:i + k]) + 2 * (k - 1)
        if len(g) > span:
            width[i + k - 1] += len(g) - span
        i += k
    lab_w = [max([len(h)] + [len(r[j]) for r in labels]) for j, h in enumerate(headers)]
    cov_w = max([8] + [len(c) for c in cov]) if cov else 0
    top, i = [], 0
    for g, k in _groups(cols):
        top.append(g.ljust(sum(width[i:i + k]) + 2 * (k - 1)))
        i += k
    line1 = "  ".join([" " * w for w in lab_w] + top + ([" " * cov_w] if cov else []))
    line2 = "  ".join([h.ljust(w) for h, w in zip(headers, lab_w, strict=True)]
                      + [c[1].rjust(w) for c, w in zip(cols, width, strict=True)]
                      + (["Complete".rjust(cov_w)] if cov else []))
    body = []
    for r, (lab, row) in enumerate(zip(labels, cells, strict=True)):
        body.append("  ".join([x.ljust(w) for x, w in zip(lab, lab_w, strict=True)]
                              + [x.rjust(w) for x, w in zip(row, width, strict=True)]
                              + ([cov[r].rjust(cov_w)] if cov else [])).rstrip())
    lines = [t.title, line1.rstrip(), line2.rstrip(), "-" * len(line2.rstrip()), *body]
    return "\n".join([*lines, *_legend(t, cov)]) + "\n"


def _marked(t: Table, fmt: str) -> list[list[str]]:
    marks = t.best_marks()
    wrap = {"md": ("**{}**", "<u>{}</u>"), "latex": ("\\textbf{{{}}}", "\\underline{{{}}}")}[fmt]
    out = []
    for row in t.rows:
        line = []
        for c in t.columns:
            text = t.show(row, c)
            text = latex_escape(text).replace("*", "$^{*}$") if fmt == "latex" else _md_escape(text)
            mark = marks.get((row.labels, c))
            line.append(wrap[mark - 1].format(text) if mark else text)
        out.append(line)
    return out


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*")


def _markdown(t: Table) -> str:
    headers, labels, cov = _label_columns(t)
    head = headers + [_flat(c) for c in t.columns] + (["Complete"] if cov else [])
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join([":---"] * len(headers) + ["---:"] * (len(head) - len(headers))) + "|"]
    for r, (lab, row) in enumerate(zip(labels, _marked(t, "md"), strict=True)):
        lines.append("| " + " | ".join([_md_escape(x) for x in lab] + row + ([cov[r]] if cov else [])) + " |")
    legend = _legend(t, cov)
    return "\n".join(lines) + "\n" + "".join(f"\n{line.replace('*', chr(92) + '*')}\n" for line in legend)


def _csv(t: Table) -> str:
    headers, labels, cov = _label_columns(t)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([csv_cell(x) for x in headers + [_flat(c) for c in t.columns] + (["Complete"] if cov else [])])
    for r, (lab, row) in enumerate(zip(labels, t.rows, strict=True)):
        cells = ["" if (x := t.show(row, c)) == MISSING else x for c in t.columns]
        w.writerow([csv_cell(x) for x in lab + cells + ([cov[r]] if cov else [])])  # no formula runs (OWASP)
    return buf.getvalue()


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex(t: Table) -> str:
    headers, labels, cov = _label_columns(t)
    cols = t.columns
    nl = len(headers)
    spec = "l" * nl + "".join("r" * k for _, k in _groups(cols)) + ("r" if cov else "")
    top, rules, start = [""] * nl, [], nl + 1
    for g, k in _groups(cols):
        top.append(f"\\multicolumn{{{k}}}{{c}}{{{latex_escape(g)}}}" if k > 1 else latex_escape(g))
        rules.append(f"\\cmidrule(lr){{{start}-{start + k - 1}}}")
        start += k
    if cov:
        top.append("")
    sub = [latex_escape(h) for h in headers] + [latex_escape(c[1]) for c in cols] + (["Complete"] if cov else [])
    lines = [f"\\begin{{tabular}}{{{spec}}}", "\\toprule", " & ".join(top) + " \\\\", " ".join(rules),
             " & ".join(sub) + " \\\\", "\\midrule"]
    for r, (lab, row) in enumerate(zip(labels, _marked(t, "latex"), strict=True)):
        lines.append(" & ".join([latex_escape(x) for x in lab] + row + ([cov[r]] if cov else [])) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    lines += ["% " + line for line in _legend(t, cov)]
    return "\n".join(lines) + "\n"


def _json_cell(t: Table, row: Row, col: Column) -> dict | None:
    cell = t.cell(row, col)
    if not cell.complete:
        return {"value": None, "complete": False, "parts": cell.parts}
    if cell.text is not None:
        return {"text": cell.text}
    if cell.value is None or math.isnan(cell.value):
        return None
    out: dict[str, Any] = {"value": round(float(cell.value), 6), "complete": True}
    if cell.marks:
        out["marks"] = cell.marks
    return out


def _json(t: Table) -> str:
    rows = []
    for row in t.rows:
        entry: dict[str, Any] = dict(zip(t.label_names, row.labels, strict=True))
        entry["complete"] = row.complete
        if row.marks:
            entry["marks"] = row.marks
        entry["cells"] = {_flat(c): _json_cell(t, row, c) for c in t.columns}
        rows.append(entry)
    obj = {"view": t.view, "metric": t.metric, "unit": t.unit, "title": t.title,
           "columns": [_flat(c) for c in t.columns], "rows": rows}
    if t.footnotes:
        obj["footnotes"] = list(t.footnotes)
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
