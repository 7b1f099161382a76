"""From results files to the paper's tables: scores in long form, aggregation with completeness, rendering.

Aggregation follows the LMEB paper (``datasets.json`` notes): a dataset score is the mean over its
subsets; a memory-type score is the mean over its datasets; Mean (Dataset) is the mean over the 22
datasets; Mean (Type) is the mean of the 4 type scores.

No mean is ever taken over an incomplete group: a mean over fewer datasets is a different number
from the benchmark's and must not pass for it. A dataset is complete only with ALL its registry
subsets, a type only with all its datasets complete, Mean (Dataset) only with all 22 datasets complete,
Mean (Type) only with all 4 type scores. An incomplete group has no value (NaN in the frames, beside
``n``/``total`` = parts complete / parts required and ``complete`` False) and is shown as that count
with a trailing ``*``, e.g. ``3/5*`` (3 of 5 subsets present), never as a number. What is complete
keeps its number: the subsets present in the subsets view, the complete datasets of an incomplete
model in the datasets view, its complete types in the paper view. Per row, a ``Complete`` column
counts complete datasets (subsets in the subsets view). Best/second marks go to numbers only.

Values in results files and in the long frames are fractions (mteb's convention); tables are in
percent, rendered with 2 decimals like the paper.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lmeb.errors import LmebError
from lmeb.results import SETTINGS, DatasetResult, check_setting, load_results, model_dir_name
from lmeb.tasks import MEMORY_TYPES, Task, all_tasks, get_task

PAPER_METRICS = ("ndcg_at_10", "R_cap_at_10")
METRIC_LABELS = {"ndcg_at_10": "N@10", "R_cap_at_10": "R@10"}
MEAN_DATASET = "Mean (Dataset)"
MEAN_TYPE = "Mean (Type)"
VIEWS = ("paper", "datasets", "subsets")
FORMATS = ("text", "md", "csv", "latex", "json")
ROW_LEVELS = ("model", "setting", "source")  # index of every table
INCOMPLETE_MARK = "*"
MISSING = "-"

_SCORE_COLUMNS = ["model", "setting", "memory_type", "dataset", "subset", "value", "published"]
# the long shapes of ``dataset_scores`` and ``aggregate`` (``lmeb.paper`` builds published rows in them)
DATASET_COLUMNS = ["model", "setting", "memory_type", "dataset", "value", "n", "total", "complete", "published"]
AGG_COLUMNS = ["model", "setting", "level", "memory_type", "group", "value", "n", "total", "complete", "published"]


# ----------------------------------------------------------------------------------------------- inputs
def as_results(results_or_dirs: Any) -> list[DatasetResult]:
    """Results given as DatasetResult objects, or directories (one or many) to load them from."""
    if isinstance(results_or_dirs, (str, Path)):
        return load_results([results_or_dirs])
    items = list(results_or_dirs or [])
    if all(isinstance(r, DatasetResult) for r in items):
        return items
    if all(isinstance(r, (str, Path)) for r in items):
        return load_results(items)
    raise TypeError("expected DatasetResult objects or result directories")


def available_metrics(results: Iterable[DatasetResult]) -> list[str]:
    """Every metric name found in the results, sorted."""
    return sorted({m for r in results for s in r.subsets.values() for m in s.scores})


def check_metric(results: Sequence[DatasetResult], metric: str) -> None:
    """One-line error for a metric that no result has, listing the available ones."""
    names = available_metrics(results)
    if results and metric not in names:
        close = difflib.get_close_matches(metric, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise LmebError(f"unknown metric {metric!r}{hint} (available: {', '.join(names)})")


def _task_of(result: DatasetResult) -> Task:
    try:
        return get_task(result.task_name)
    except LmebError as exc:
        raise LmebError(f"{result.path or result.task_name}: {exc}") from None


def _subset_name(task: Task, name: str, result: DatasetResult) -> str:
    try:
        return task.subset(name).name
    except LmebError as exc:
        raise LmebError(f"{result.path or task.name}: {exc}") from None


def scores_frame(results: Any, metric: str = "ndcg_at_10") -> pd.DataFrame:
    """One row per (model, setting, dataset, subset) with the metric's value (a fraction).

    Columns: model, setting, memory_type, dataset, subset, value, published (False: these are runs).
    Dataset and subset names are normalised to the registry's (mteb spellings are accepted); rows are
    in the paper's order. The same subset found in two files is an error naming both.
    """
    results = as_results(results)
    check_metric(results, metric)
    rows, seen = [], {}
    for r in results:
        task = _task_of(r)
        for name, sub in r.subsets.items():
            if metric not in sub.scores:
                continue
            subset = _subset_name(task, name, r)
            key = (r.model, r.setting, task.name, subset)
            if key in seen:
                raise LmebError(f"{r.path}: {task.name}/{subset} of {r.model} ({r.setting}) is also in {seen[key]}")
            seen[key] = r.path
            rows.append((r.model, r.setting, task.memory_type, task.name, subset, float(sub.scores[metric]), False))
    frame = pd.DataFrame(rows, columns=_SCORE_COLUMNS)
    return _registry_sorted(frame)


def _registry_sorted(frame: pd.DataFrame) -> pd.DataFrame:
    order = {t.name: i for i, t in enumerate(all_tasks())}
    sub_order = {(t.name, s): i for t in all_tasks() for i, s in enumerate(t.subset_names)}
    if frame.empty:
        return frame.reset_index(drop=True)
    keys = frame.assign(_d=frame["dataset"].map(order), _s=[sub_order.get(k, 0) for k in zip(
        frame["dataset"], frame["subset"], strict=True)])
    return (keys.sort_values(["model", "setting", "_d", "_s"], kind="stable")
            .drop(columns=["_d", "_s"]).reset_index(drop=True))


# ------------------------------------------------------------------------------------------ aggregation
def registry_counts() -> dict[str, int]:
    """Datasets per memory type in the registry (2/6/8/6)."""
    return {m: sum(t.memory_type == m for t in all_tasks()) for m in MEMORY_TYPES}


def dataset_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Dataset score = mean over its subsets, computed only with all registry subsets present (else NaN).

    Columns: model, setting, memory_type, dataset, value, n (subsets present), total, complete, published.
    """
    if frame.empty:
        return pd.DataFrame(columns=DATASET_COLUMNS)
    totals = {t.name: set(t.subset_names) for t in all_tasks()}
    g = frame.groupby(["model", "setting", "memory_type", "dataset"], sort=False)
    out = g.agg(value=("value", "mean"), subsets=("subset", lambda s: frozenset(s)),
                published=("published", "all")).reset_index()
    out["n"] = out["subsets"].map(len)
    out["total"] = out["dataset"].map(lambda d: len(totals[d]))
    out["complete"] = [totals[d] <= s for d, s in zip(out["dataset"], out["subsets"], strict=True)]
    out["value"] = out["value"].where(out["complete"], math.nan)  # no mean over fewer subsets
    return out[DATASET_COLUMNS]


def aggregate_datasets(datasets: pd.DataFrame) -> pd.DataFrame:
    """Type scores and the two overall means from dataset scores (the output of ``dataset_scores``).

    Type = mean over its datasets, Mean (Dataset) = mean over the 22 datasets, Mean (Type) = mean of
    the 4 type scores; each only when all its parts are complete, else NaN with ``n`` = parts complete
    (datasets for a type and Mean (Dataset), type scores for Mean (Type)) of ``total``. A type with no
    dataset at all gets no row (nothing run). Columns as ``aggregate``.
    """
    counts = registry_counts()
    rows = []
    for (model, setting), g in datasets.groupby(["model", "setting"], sort=False):
        published = bool(g["published"].all())
        done = g[g["complete"].astype(bool)]
        types = {}
        for m in MEMORY_TYPES:
            if not (g["memory_type"] == m).any():
                continue
            part = done[done["memory_type"] == m]
            complete = len(part) == counts[m]
            if complete:
                types[m] = part["value"].mean()
            rows.append((model, setting, "type", m, m, types.get(m, math.nan), len(part), counts[m], complete,
                         published))
        total = sum(counts.values())
        rows.append((model, setting, "mean_dataset", "", MEAN_DATASET,
                     done["value"].mean() if len(done) == total else math.nan, len(done), total, len(done) == total,
                     published))
        all_types = len(types) == len(MEMORY_TYPES)
        rows.append((model, setting, "mean_type", "", MEAN_TYPE, sum(types.values()) / len(types) if all_types
                     else math.nan, len(types), len(MEMORY_TYPES), all_types, published))
    return pd.DataFrame(rows, columns=AGG_COLUMNS)


def aggregate(frame: pd.DataFrame) -> pd.DataFrame:
    """Every aggregate of a ``scores_frame``: one row per dataset, type, Mean (Dataset), Mean (Type).

    Columns: model, setting, level ("dataset"|"type"|"mean_dataset"|"mean_type"), memory_type, group
    (dataset name, type name, "Mean (Dataset)" or "Mean (Type)"), value (fraction; NaN when incomplete),
    n and total (parts complete / parts required: subsets present for a dataset, complete datasets for a
    type and Mean (Dataset), type scores for Mean (Type)), complete, published.
    """
    ds = dataset_scores(frame)
    if ds.empty:
        return pd.DataFrame(columns=AGG_COLUMNS)
    dataset_rows = ds.assign(level="dataset", group=ds["dataset"])[AGG_COLUMNS]
    return pd.concat([dataset_rows, aggregate_datasets(ds)], ignore_index=True)


# ---------------------------------------------------------------------------------------------- tables
def _filter(results: list[DatasetResult], setting: str | None) -> list[DatasetResult]:
    if setting is None:
        return results
    check_setting(setting)
    return [r for r in results if r.setting == setting]


class _Builder:
    """Collects cells (percent; NaN for incomplete groups) into a wide frame, with ``attrs`` marks."""

    def __init__(self, columns: list[tuple[str, str]]) -> None:
        self.columns = columns
        self.rows: dict[tuple[str, str, str], dict[tuple[str, str], float]] = {}
        self.incomplete: dict[tuple, str] = {}
        self.coverage: dict[tuple, str] = {}

    def put(self, row: tuple[str, str, str], col: tuple[str, str], value: float, n: int, total: int,
            complete: bool) -> None:
        self.rows.setdefault(row, {})[col] = value * 100.0
        if not complete:
            self.incomplete[(row, col)] = f"{n}/{total}"

    def frame(self, view: str, metric: str, title: str) -> pd.DataFrame:
        index = pd.MultiIndex.from_tuples(list(self.rows), names=list(ROW_LEVELS))
        cols = pd.MultiIndex.from_tuples(self.columns, names=["group", "column"])
        data = [[cells.get(c, math.nan) for c in self.columns] for cells in self.rows.values()]
        df = pd.DataFrame(data, index=index, columns=cols, dtype=float)
        df.attrs.update(view=view, metric=metric, title=title, incomplete=dict(self.incomplete),
                        coverage=dict(self.coverage))
        return df


def _run_rows(results: list[DatasetResult]) -> list[tuple[str, str, str]]:
    keys = sorted({(r.model, r.setting) for r in results}, key=lambda k: (k[0], SETTINGS.index(k[1])
                                                                          if k[1] in SETTINGS else 9))
    return [(m, s, "run") for m, s in keys]


def _dataset_coverage(results: list[DatasetResult], b: _Builder, rows: list[tuple[str, str, str]]) -> None:
    if not results:
        return
    ds = dataset_scores(scores_frame(results, _any_metric(results)))
    total = len(all_tasks())
    for row in rows:
        part = ds[(ds["model"] == row[0]) & (ds["setting"] == row[1])]
        b.coverage[row] = f"{int(part['complete'].sum())}/{total}"


def _any_metric(results: list[DatasetResult]) -> str:
    names = available_metrics(results)
    return "ndcg_at_10" if "ndcg_at_10" in names else names[0]


def _put_aggregates(b: _Builder, agg: pd.DataFrame, col_of: Any, source: str = "run") -> None:
    for rec in agg.itertuples(index=False):
        col = col_of(rec)
        if col is not None:
            b.put((rec.model, rec.setting, source), col, rec.value, rec.n, rec.total, bool(rec.complete))


def table(results_or_dirs: Any, view: str = "paper", metric: str = "ndcg_at_10", setting: str | None = None,
          dataset: str | None = None, with_paper: str | None = None) -> pd.DataFrame:
    """A table in one of three views, values in percent (not rounded; rendering rounds to 2 decimals).

    - ``paper``: the paper's Table 2/3 layout. Columns (group, column): per memory type ("N@10",
      "R@10"), then "Mean (Dataset)" and "Mean (Type)". ``metric`` must stay the default.
    - ``datasets``: a column per dataset grouped per memory type (group = type), each type's mean
      (column "Mean") and the two overall means (group "Mean", columns "Dataset" and "Type"); any metric.
    - ``subsets``: ``dataset`` required; a column per registry subset and the dataset's "Mean".

    Rows: index (model, setting, source) with source "run" or "published" (``with_paper`` =
    "wo_inst"|"w_inst" adds the paper's rows of that table; only views paper and datasets, where the
    paper's type and mean cells exist). Cells of incomplete groups are NaN. ``df.attrs``: ``view``,
    ``metric``, ``title``, ``incomplete`` {(row, column): "n/N"} for those cells (parts complete / parts
    required), ``coverage`` {row: "n/N"} complete datasets (subsets in the subsets view) per run row.
    """
    if view not in VIEWS:
        raise LmebError(f"unknown view {view!r} (choose from {', '.join(VIEWS)})")
    if with_paper is not None:
        check_setting(with_paper, "paper setting")
    results = _filter(as_results(results_or_dirs), setting)
    if not results and with_paper is None:
        raise LmebError("no results found" + (f" for setting {setting}" if setting else ""))
    rows = _run_rows(results)
    if view == "paper":
        if metric != "ndcg_at_10":
            raise LmebError("--metric applies to views datasets and subsets; the paper view shows N@10 and R@10")
        return _paper_view(results, rows, with_paper)
    if results:
        check_metric(results, metric)
    if view == "datasets":
        return _datasets_view(results, rows, metric, with_paper)
    if with_paper is not None:
        raise LmebError("--with-paper needs view paper or datasets (the paper publishes no subset scores)")
    if not dataset:
        raise LmebError("view subsets needs --dataset")
    return _subsets_view(results, rows, metric, get_task(dataset))


def _paper_columns() -> list[tuple[str, str]]:
    groups = [*MEMORY_TYPES, MEAN_DATASET, MEAN_TYPE]
    return [(g, METRIC_LABELS[m]) for g in groups for m in PAPER_METRICS]


def _paper_rows(with_paper: str | None, metric: str) -> pd.DataFrame:
    from lmeb.paper import published_frame

    return published_frame(with_paper, metric) if with_paper else pd.DataFrame(columns=AGG_COLUMNS)


def _paper_view(results: list[DatasetResult], rows: list, with_paper: str | None) -> pd.DataFrame:
    b = _Builder(_paper_columns())
    for row in rows:
        b.rows[row] = {}
    present = set(available_metrics(results))
    for m in PAPER_METRICS:
        label = METRIC_LABELS[m]

        def col_of(rec: Any, label: str = label) -> tuple[str, str] | None:
            return None if rec.level == "dataset" else (rec.group, label)

        if m in present:
            _put_aggregates(b, aggregate(scores_frame(results, m)), col_of)
        _put_aggregates(b, _paper_rows(with_paper, m), col_of, "published")
    _dataset_coverage(results, b, rows)
    title = "LMEB: N@10 and R@10 (%) per memory type" + (f"; published rows: paper, {with_paper}" if with_paper
                                                          else "")
    return b.frame("paper", "ndcg_at_10", title)


def _datasets_view(results: list[DatasetResult], rows: list, metric: str, with_paper: str | None) -> pd.DataFrame:
    columns = []
    for m in MEMORY_TYPES:
        columns += [(m, t.name) for t in all_tasks() if t.memory_type == m] + [(m, "Mean")]
    columns += [("Mean", "Dataset"), ("Mean", "Type")]
    b = _Builder(columns)
    for row in rows:
        b.rows[row] = {}

    def col_of(rec: Any) -> tuple[str, str]:
        if rec.level == "dataset":
            return (rec.memory_type, rec.group)
        if rec.level == "type":
            return (rec.group, "Mean")
        return ("Mean", "Dataset" if rec.level == "mean_dataset" else "Type")

    if results:
        _put_aggregates(b, aggregate(scores_frame(results, metric)), col_of)
    if with_paper:
        if metric not in PAPER_METRICS:
            raise LmebError(f"the paper publishes only {', '.join(PAPER_METRICS)}, not {metric}")
        _put_aggregates(b, _paper_rows(with_paper, metric), col_of, "published")
    _dataset_coverage(results, b, rows)
    return b.frame("datasets", metric, f"LMEB: {metric} (%) per dataset")


def _subsets_view(results: list[DatasetResult], rows: list, metric: str, task: Task) -> pd.DataFrame:
    b = _Builder([(task.name, s) for s in task.subset_names] + [(task.name, "Mean")])
    frame = scores_frame([r for r in results if _task_of(r).name == task.name], metric)
    if frame.empty:
        raise LmebError(f"no results for dataset {task.name}")
    for row in rows:
        part = frame[(frame["model"] == row[0]) & (frame["setting"] == row[1])]
        if part.empty:
            continue
        b.rows[row] = {}
        for rec in part.itertuples(index=False):
            b.put(row, (task.name, rec.subset), rec.value, 1, 1, True)
        ds = dataset_scores(part).iloc[0]
        b.put(row, (task.name, "Mean"), ds["value"], ds["n"], ds["total"], bool(ds["complete"]))
        b.coverage[row] = f"{ds['n']}/{ds['total']}"
    return b.frame("subsets", metric, f"LMEB: {metric} (%) per subset of {task.name}")


# ------------------------------------------------------------------------------------------- rendering
def best_marks(df: pd.DataFrame) -> dict[tuple, int]:
    """{(row, column): 1 best | 2 second} per column, over the numbers (complete cells) compared at 2 decimals.

    Ties share the mark; the second is the next distinct value. A column with fewer than two
    comparable cells gets no marks.
    """
    incomplete = df.attrs.get("incomplete", {})
    marks: dict[tuple, int] = {}
    for col in df.columns:
        cells = {row: round(v, 2) for row, v in df[col].items() if not math.isnan(v) and (row, col) not in incomplete}
        if len(cells) < 2:
            continue
        ranked = sorted(set(cells.values()), reverse=True)[:2]
        for row, v in cells.items():
            if v in ranked:
                marks[(row, col)] = ranked.index(v) + 1
    return marks


def _cell_text(df: pd.DataFrame, row: tuple, col: tuple) -> str:
    """"61.20", "3/5*" for an incomplete group (parts complete / required, no mean), or "-" for no result."""
    parts = df.attrs.get("incomplete", {}).get((row, col))
    if parts is not None:
        return parts + INCOMPLETE_MARK
    v = df.at[row, col]
    return MISSING if math.isnan(v) else f"{v:.2f}"


def _label_columns(df: pd.DataFrame) -> tuple[list[str], list[list[str]], list[str]]:
    """Row-label headers, the label cells per row, and the coverage column (empty when all complete)."""
    show_source = any(r[2] != "run" for r in df.index)
    headers = ["Model", "Setting"] + (["Source"] if show_source else [])
    labels = [[r[0], r[1], r[2]] if show_source else [r[0], r[1]] for r in df.index]
    coverage = df.attrs.get("coverage", {})
    total = None
    for cov in coverage.values():
        n, total = cov.split("/")
        if n != total:
            break
    else:
        return headers, labels, []
    cov_col = [coverage.get(r, f"{total}/{total}") for r in df.index]
    return headers, labels, cov_col


def _flat(col: tuple[str, str]) -> str:
    return f"{col[0]} {col[1]}"


def _legend(df: pd.DataFrame, cov: list[str]) -> str:
    unit = "subsets" if df.attrs.get("view") == "subsets" else "datasets"
    parts = []
    if df.attrs.get("incomplete"):
        parts.append(f"n/N{INCOMPLETE_MARK} = incomplete: only n of N parts complete, no mean computed")
    if cov:
        parts.append(f"Complete = complete {unit} / all")
    return "; ".join(parts)


def render(df: pd.DataFrame, fmt: str = "text") -> str:
    """The table as aligned text, Markdown, CSV, LaTeX or JSON (see the module docstring for the marks).

    md and LaTeX mark the best cell per column bold and the second underlined (paper style).
    """
    if fmt not in FORMATS:
        raise LmebError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    return {"text": _text, "md": _markdown, "csv": _csv, "latex": _latex, "json": _json}[fmt](df)


def _groups(columns: list[tuple[str, str]]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for g, _ in columns:
        if out and out[-1][0] == g:
            out[-1] = (g, out[-1][1] + 1)
        else:
            out.append((g, 1))
    return out


def _text(df: pd.DataFrame) -> str:
    headers, labels, cov = _label_columns(df)
    cols = list(df.columns)
    cells = [[_cell_text(df, row, c) for c in cols] for row in df.index]
    width = [max([len(c[1])] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    # widen the last column of a group whose name is longer than its columns
    i = 0
    for g, k in _groups(cols):
        span = sum(width[i:i + k]) + 2 * (k - 1)
        if len(g) > span:
            width[i + k - 1] += len(g) - span
        i += k
    lab_w = [max([len(h)] + [len(r[j]) for r in labels]) for j, h in enumerate(headers)]
    extra_h = ["Complete"] if cov else []
    cov_w = max([8] + [len(c) for c in cov]) if cov else 0
    top, i = [], 0
    for g, k in _groups(cols):
        top.append(g.ljust(sum(width[i:i + k]) + 2 * (k - 1)))
        i += k
    line1 = "  ".join([" " * w for w in lab_w] + top + ([" " * cov_w] if cov else []))
    line2 = "  ".join([h.ljust(w) for h, w in zip(headers, lab_w, strict=True)]
                      + [c[1].rjust(w) for c, w in zip(cols, width, strict=True)]
                      + [h.rjust(cov_w) for h in extra_h])
    body = []
    for r, (lab, row) in enumerate(zip(labels, cells, strict=True)):
        body.append("  ".join([x.ljust(w) for x, w in zip(lab, lab_w, strict=True)]
                              + [x.rjust(w) for x, w in zip(row, width, strict=True)]
                              + ([cov[r].rjust(cov_w)] if cov else [])).rstrip())
    legend = _legend(df, cov)
    lines = [df.attrs.get("title", ""), line1.rstrip(), line2.rstrip(), "-" * len(line2.rstrip()), *body]
    return "\n".join([*lines, *([legend] if legend else [])]) + "\n"


def _marked(df: pd.DataFrame, fmt: str) -> list[list[str]]:
    marks = best_marks(df)
    wrap = {"md": ("**{}**", "<u>{}</u>"), "latex": ("\\textbf{{{}}}", "\\underline{{{}}}")}[fmt]
    out = []
    for row in df.index:
        line = []
        for c in df.columns:
            text = _cell_text(df, row, c)
            text = text.replace("*", "$^{*}$" if fmt == "latex" else "\\*")
            mark = marks.get((row, c))
            line.append(wrap[mark - 1].format(text) if mark else text)
        out.append(line)
    return out


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*")


def _markdown(df: pd.DataFrame) -> str:
    headers, labels, cov = _label_columns(df)
    head = headers + [_flat(c) for c in df.columns] + (["Complete"] if cov else [])
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join([":---"] * len(headers) + ["---:"] * (len(head) - len(headers))) + "|"]
    for r, (lab, row) in enumerate(zip(labels, _marked(df, "md"), strict=True)):
        lines.append("| " + " | ".join([_md_escape(x) for x in lab] + row + ([cov[r]] if cov else [])) + " |")
    legend = _legend(df, cov)
    return "\n".join(lines) + "\n" + (f"\n{legend.replace('*', chr(92) + '*')}\n" if legend else "")


def _csv(df: pd.DataFrame) -> str:
    headers, labels, cov = _label_columns(df)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(headers + [_flat(c) for c in df.columns] + (["Complete"] if cov else []))
    for r, (lab, row) in enumerate(zip(labels, df.index, strict=True)):
        cells = ["" if (t := _cell_text(df, row, c)) == MISSING else t for c in df.columns]
        w.writerow(lab + cells + ([cov[r]] if cov else []))
    return buf.getvalue()


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex(df: pd.DataFrame) -> str:
    headers, labels, cov = _label_columns(df)
    cols = list(df.columns)
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
    for r, (lab, row) in enumerate(zip(labels, _marked(df, "latex"), strict=True)):
        lines.append(" & ".join([latex_escape(x) for x in lab] + row + ([cov[r]] if cov else [])) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    legend = _legend(df, cov)
    if legend:
        lines.append("% " + legend)
    return "\n".join(lines) + "\n"


def _json(df: pd.DataFrame) -> str:
    incomplete = df.attrs.get("incomplete", {})
    coverage = df.attrs.get("coverage", {})
    rows = []
    for row in df.index:
        cells = {}
        for c in df.columns:
            v = df.at[row, c]
            if (row, c) in incomplete:
                cells[_flat(c)] = {"value": None, "complete": False, "parts": incomplete[(row, c)]}
            else:
                cells[_flat(c)] = None if math.isnan(v) else {"value": round(float(v), 6), "complete": True}
        rows.append({"model": row[0], "setting": row[1], "source": row[2], "complete": coverage.get(row),
                     "cells": cells})
    obj = {"view": df.attrs.get("view"), "metric": df.attrs.get("metric"), "unit": "percent",
           "title": df.attrs.get("title"), "columns": [_flat(c) for c in df.columns], "rows": rows}
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def models(results: Iterable[DatasetResult]) -> list[str]:
    """The model names in the results, sorted."""
    return sorted({r.model for r in results})


def resolve_model(results: Sequence[DatasetResult], name: str) -> str:
    """The model of the results called ``name`` (full name, folder name, or the part after the last '/',
    any case); an unknown name is a one-line error listing the closest names."""
    names = models(results)
    for key in (lambda m: m, lambda m: model_dir_name(m), lambda m: m.rsplit("/", 1)[-1]):
        for fold in (lambda s: s, str.lower):
            found = sorted({m for m in names if fold(key(m)) == fold(name)})
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise LmebError(f"model name {name!r} is ambiguous: {', '.join(found)}")
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else f" (models in the results: {', '.join(names) or 'none'})"
    raise LmebError(f"unknown model {name!r}{hint}")
