"""A ``Comparison`` as a ``Table`` (``lmeb.report.table``), rendered like every other lmeb table.

Rows: each dataset compared (with ``--subsets``, followed by its subsets), each memory type, Mean
(Dataset) and Mean (Type). Values in percent in every format (text, CSV, JSON). The tables' rule holds:
a group missing registry parts (a dataset compared on 2 of its 5 subsets, a type or mean missing a
complete dataset) shows ``n/N*`` (parts complete) in place of A, B and delta, never a mean over fewer
parts; the subsets it does have are listed with ``--subsets``.
"""

from __future__ import annotations

import json

from lmeb.compare.paired import ALPHA, Comparison
from lmeb.errors import LmebError
from lmeb.report.render import render
from lmeb.report.table import Cell, Column, Table
from lmeb.wording import counted

COMPARE_FORMATS = ("text", "csv", "json")
_STATS = (("A", "a"), ("B", "b"), ("delta", "delta"))


def comparison_columns() -> list[Column]:
    cols: list[Column] = [("", "subsets"), ("", "queries")]
    for group, _ in _STATS:
        cols += [(group, "A - B" if group == "delta" else "score"), (group, "lo"), (group, "hi")]
    return [*cols, ("", "p")]


def comparison_table(c: Comparison, show_subsets: bool = False) -> Table:
    """The comparison's rows as a Table (percent; ``n/N*`` for an incomplete group)."""
    cols = comparison_columns()
    t = Table(cols, label_names=("dataset", "subset"), view="compare", metric=c.metric, ranked=False,
              title=f"{c.label_a} (A) vs {c.label_b} (B), {c.setting}, {c.metric} in percent; delta = A - B; "
                    f"95% bootstrap CIs and sign-flip p ({c.resamples} resamples, seed {c.seed})")
    t.formats = {("", "queries"): "d", ("", "p"): ".4f", **{(g, n): "+.2f" for g, n in cols if g == "delta"}}
    for rec in c.datasets.itertuples(index=False):
        _put(t, rec, (rec.dataset, ""))
        if show_subsets and rec.level == "dataset":
            for sub in c.subsets[c.subsets["dataset"] == rec.dataset].itertuples(index=False):
                _put(t, sub, (sub.dataset, sub.subset))
    incomplete = c.datasets[~c.datasets["complete"].astype(bool)]
    if len(incomplete):
        parts = [f"{r.dataset} {r.parts}" for r in incomplete.itertuples(index=False) if r.level == "dataset"]
        t.title += ("\nincomplete: " + (f"datasets compared on only some subsets ({', '.join(parts)}); "
                                        if parts else "") + "no mean over an incomplete group"
                    + ("" if show_subsets else " (--subsets lists the subsets compared)"))
    if c.source_a or c.source_b:  # every comparison says what data each side was computed from
        mark = "§ " if "synthetic" in f"{c.source_a} {c.source_b}" else ""
        t.footnotes.append(f"{mark}data: A {c.source_a}, B {c.source_b}"
                           + (" (synthetic: lmeb's sample, not LMEB; the deltas say nothing about a model)"
                              if mark else ""))
    s = c.summary
    t.footnotes.append(f"subsets: A wins {s['wins']}, ties {s['ties']}, losses {s['losses']} "
                       f"(significant at p<{ALPHA}: {s['significant_wins']} wins, {s['significant_losses']} losses) "
                       f"over {counted(s['subsets'], 'subset')} of {counted(s['datasets'], 'dataset')}")
    dropped = int(c.subsets["dropped"].sum())
    if dropped:
        t.footnotes.append(f"note: {dropped} per-query values not compared (query on one side only, or NaN)")
    return t


def _put(t: Table, rec: object, labels: tuple[str, str]) -> None:
    row = t.row(labels)
    complete = bool(rec.complete)
    if rec.level != "subset":
        row.cells[("", "subsets")] = Cell(text=str(rec.subsets))
    row.cells[("", "queries")] = Cell(int(rec.queries))
    for group, key in _STATS:
        point = (group, "A - B" if group == "delta" else "score")
        if not complete:
            row.cells[point] = Cell(parts=str(rec.parts))
            continue
        row.cells[point] = Cell(100 * getattr(rec, key))
        row.cells[(group, "lo")] = Cell(100 * getattr(rec, f"{key}_lo"))
        row.cells[(group, "hi")] = Cell(100 * getattr(rec, f"{key}_hi"))
    if complete:
        row.cells[("", "p")] = Cell(float(rec.p_value))


def format_comparison(c: Comparison, fmt: str = "text", show_subsets: bool = False) -> str:
    """The comparison as aligned text, CSV or JSON, all in percent (2 decimals in text and CSV)."""
    if fmt not in COMPARE_FORMATS:
        raise LmebError(f"unknown format {fmt!r} (choose from {', '.join(COMPARE_FORMATS)})")
    t = comparison_table(c, show_subsets)
    if fmt != "json":
        return render(t, fmt)
    obj = json.loads(render(t, "json"))
    obj.update(model_a=c.model_a, model_b=c.model_b, setting_a=c.setting_a, setting_b=c.setting_b,
               setting=c.setting, seed=c.seed, resamples=c.resamples, summary=c.summary,
               data_source_a=c.source_a, data_source_b=c.source_b)
    return json.dumps(obj, indent=2, allow_nan=False) + "\n"
