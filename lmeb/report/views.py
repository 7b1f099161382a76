"""The paper's tables from results files: four views, each a ``Table`` (``lmeb.report.table``).

Numbers and completeness come from ``lmeb.report.aggregate`` (the paper's aggregation, no mean over an
incomplete group); this module only lays them out. An incomplete group's cell is its count ``n/N``
(parts complete / parts required), shown ``n/N*``, never a number. What is complete keeps its number:
the subsets present in the subsets view, the complete datasets of an incomplete model in the datasets
view, its complete types in the paper view. Per row, ``complete`` counts complete datasets (subsets in
the subsets view). Tables are in percent, rendered with 2 decimals like the paper.

A run whose provenance says ``uses_instructions: false`` (BM25) is marked ``†`` beside its setting:
its w_inst equals its wo_inst, it is not a second setting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from lmeb.errors import LmebError
from lmeb.report.aggregate import (
    AGG_COLUMNS,
    MEAN_DATASET,
    MEAN_TYPE,
    METRIC_LABELS,
    PAPER_METRICS,
    aggregate,
    as_results,
    available_metrics,
    by_run,
    check_metric,
    dataset_scores,
    dataset_status,
    ignores_instructions,
    scores_frame,
    task_of,
)
from lmeb.report.efficiency_views import EFFICIENCY_VIEWS, efficiency_table
from lmeb.report.table import Cell, Column, Table
from lmeb.results.dataset_result import DatasetResult, is_number
from lmeb.results.identity import SCOPE_MARK, SCOPE_NOTE, SYNTHETIC_MARK, UNVERIFIED_MARK, UNVERIFIED_NOTE, source_marks
from lmeb.tasks.registry import MEMORY_TYPES, Task, all_tasks, get_task
from lmeb.tasks.settings import SETTINGS, check_setting

VIEWS = ("paper", "datasets", "subsets", "instructions", *EFFICIENCY_VIEWS, "growth")
ROW_LEVELS = ("model", "setting", "source")  # index of every table
NO_INSTRUCTIONS_MARK = "†"
NO_INSTRUCTIONS_NOTE = (f"{NO_INSTRUCTIONS_MARK} the model ignores instructions (uses_instructions: false): "
                        "its w_inst equals its wo_inst")
SYNTHETIC_NOTE = (f"{SYNTHETIC_MARK} synthetic data (lmeb sample; provenance synthetic: true), not LMEB: "
                  "the scores say nothing about a model")
CV_MARK = "¶"  # (‡ is the candidates-missing mark of lmeb.results.identity)
CV_NOTE = (f"{CV_MARK} hybrid fusion weights chosen per memory type by query-level k-fold cross-validation on the "
           "test queries (LMEB has no other split; lmeb.engine.hybrid_cv)")
EFFECT = "w_inst - wo_inst"


def _filter(results: list[DatasetResult], setting: str | None) -> list[DatasetResult]:
    if setting is None:
        return results
    check_setting(setting)
    return [r for r in results if r.setting == setting]


def _put(t: Table, agg: pd.DataFrame, col_of: Callable[[Any], Column | None], source: str = "run") -> None:
    """Cells from an ``aggregate``-shaped frame: the number in percent, or the count of an incomplete group."""
    for rec in agg.itertuples(index=False):
        col = col_of(rec)
        if col is not None:
            cell = Cell(rec.value * 100.0) if rec.complete else Cell(parts=f"{rec.n}/{rec.total}")
            t.row((rec.model, rec.setting, source)).cells[col] = cell


def run_marks(run: list[DatasetResult], instructions: bool) -> str:
    """A run row's marks: † where the model ignores the instructions it got (``instructions``: a w_inst
    setting), then the identity marks of ``lmeb.results.identity``: § synthetic sample, ‡ a dataset run without its
    candidates file, ° weights fingerprinted by lmeb's older rule (unverified); and ¶ where a hybrid's fusion
    weights were cross-validated on the test queries (``lmeb.engine.hybrid_cv``)."""
    return ((NO_INSTRUCTIONS_MARK if instructions and ignores_instructions(run) else "") + source_marks(run)
            + (CV_MARK if any((r.provenance.get("model_config") or {}).get("weights") == "auto" for r in run) else ""))


def _mark_notes(t: Table) -> None:
    """The footnote of every mark some row has."""
    marks = "".join(r.marks for r in t.rows)
    t.footnotes += [note for mark, note in ((NO_INSTRUCTIONS_MARK, NO_INSTRUCTIONS_NOTE),
                                            (SYNTHETIC_MARK, SYNTHETIC_NOTE), (SCOPE_MARK, SCOPE_NOTE),
                                            (UNVERIFIED_MARK, UNVERIFIED_NOTE), (CV_MARK, CV_NOTE))
                   if mark in marks]
    for row in t.rows:  # a synthetic run never takes a best-value mark from a real one
        row.ranked = SYNTHETIC_MARK not in row.marks


def _run_table(results: list[DatasetResult], columns: list[Column], **kw: Any) -> Table:
    """A table with a row per run (model, then setting in the paper's order), complete datasets counted."""
    t = Table(columns, **kw)
    runs = by_run(results)
    for model, setting in sorted(runs, key=lambda k: (k[0], SETTINGS.index(k[1]) if k[1] in SETTINGS else 9)):
        t.row((model, setting, "run")).marks = run_marks(runs[(model, setting)], setting == "w_inst")
    _mark_notes(t)
    if results:
        ds = dataset_scores(scores_frame(results, _any_metric(results)))
        done = ds[ds["complete"].astype(bool)].groupby(["model", "setting"]).size()
        for row in t.rows:
            row.complete = f"{int(done.get((row.labels[0], row.labels[1]), 0))}/{len(all_tasks())}"
    return t


def _any_metric(results: list[DatasetResult]) -> str:
    names = available_metrics(results)
    return "ndcg_at_10" if "ndcg_at_10" in names else names[0]


def build_table(results_or_dirs: Any, view: str = "paper", metric: str = "ndcg_at_10", setting: str | None = None,
                dataset: str | None = None, with_paper: str | None = None, all_columns: bool = False) -> Table:
    """A ``Table`` in one of four views, values in percent (not rounded; rendering rounds to 2 decimals).

    - ``paper``: the paper's Table 2/3 layout. Columns (group, column): per memory type ("N@10",
      "R@10"), then "Mean (Dataset)" and "Mean (Type)". ``metric`` must stay the default.
    - ``datasets``: a column per dataset grouped per memory type (group = type), each type's mean
      (column "Mean") and the two overall means (group "Mean", columns "Dataset" and "Type"); any
      metric. Columns no row has are left out (``all_columns`` keeps them), said in a footnote.
    - ``subsets``: ``dataset`` required; a column per registry subset and the dataset's "Mean".
    - ``instructions``: the paper layout of w_inst - wo_inst (percentage points) for every model with
      both settings (``with_paper`` adds the paper's effect rows, Table 3 - Table 2).
    - ``efficiency`` / ``efficiency-datasets``: what each run cost (texts, tokens, seconds, rates, peak
      memory, device, parameters) per run or per run and dataset (``lmeb.report.efficiency_views``).

    Rows: (model, setting, source) with source "run" or "published" (``with_paper`` = "wo_inst"|"w_inst"
    adds the paper's rows of that table; only views paper and datasets, where the paper's cells exist).
    """
    if view not in VIEWS:
        raise LmebError(f"unknown view {view!r} (choose from {', '.join(VIEWS)})")
    if with_paper is not None:
        check_setting(with_paper, "paper setting")
    if view in EFFICIENCY_VIEWS:
        if metric != "ndcg_at_10" or with_paper is not None:
            raise LmebError(f"--metric and --with-paper do not go with --view {view} (it shows cost, not scores)")
        results = _filter(as_results(results_or_dirs), setting)
        if not results:
            raise LmebError("no results found" + (f" for setting {setting}" if setting else ""))
        t = efficiency_table(results, view, dataset)
        _mark_notes(t)
        return t
    if view == "growth":  # scoped runs side by side (lmeb.report.growth_view)
        from lmeb.report.growth_view import growth_table

        if with_paper is not None or dataset is not None:
            raise LmebError("--with-paper and --dataset do not go with --view growth")
        return growth_table(_filter(as_results(results_or_dirs), setting), metric)
    if dataset is not None and view != "subsets":
        raise LmebError("--dataset goes with --view subsets or efficiency (the other views show every dataset)")
    if metric != "ndcg_at_10" and view in ("paper", "instructions"):
        raise LmebError(f"--metric applies to views datasets and subsets; the {view} view shows N@10 and R@10")
    if view == "instructions" and setting is not None:
        raise LmebError("--setting does not go with --view instructions (it subtracts wo_inst from w_inst)")
    results = _filter(as_results(results_or_dirs), setting)
    if not results and with_paper is None:
        raise LmebError("no results found" + (f" for setting {setting}" if setting else ""))
    if view == "paper":
        return _paper_view(results, with_paper)
    if view == "instructions":
        return _instructions_view(results, with_paper is not None)
    if results:
        check_metric(results, metric)
    if view == "datasets":
        return _datasets_view(results, metric, with_paper, all_columns)
    if with_paper is not None:
        raise LmebError("--with-paper needs view paper or datasets (the paper publishes no subset scores)")
    if not dataset:
        raise LmebError("view subsets needs --dataset")
    return _subsets_view(results, metric, get_task(dataset))


def table(results_or_dirs: Any, view: str = "paper", metric: str = "ndcg_at_10", setting: str | None = None,
          dataset: str | None = None, with_paper: str | None = None, all_columns: bool = False) -> pd.DataFrame:
    """``build_table`` as a DataFrame: index (model, setting, source), columns (group, column), percent;
    NaN where there is no number (incomplete groups too). ``render(df)`` writes it with its counts."""
    return build_table(results_or_dirs, view, metric, setting, dataset, with_paper, all_columns).to_frame()


def paper_columns() -> list[Column]:
    """The paper's Table 2/3 columns: (memory type or mean, "N@10" | "R@10")."""
    groups = [*MEMORY_TYPES, MEAN_DATASET, MEAN_TYPE]
    return [(g, METRIC_LABELS[m]) for g in groups for m in PAPER_METRICS]


def published(with_paper: str | None, metric: str) -> pd.DataFrame:
    """The paper's rows in ``aggregate``'s shape (none without ``with_paper``)."""
    from lmeb.report.paper import published_frame

    return published_frame(with_paper, metric) if with_paper else pd.DataFrame(columns=AGG_COLUMNS)


def _paper_view(results: list[DatasetResult], with_paper: str | None) -> Table:
    title = "LMEB: N@10 and R@10 (%) per memory type" + (f"; published rows: paper, {with_paper}" if with_paper
                                                          else "")
    t = _run_table(results, paper_columns(), title=title, view="paper", metric="ndcg_at_10")
    present = set(available_metrics(results))
    for m in PAPER_METRICS:
        label = METRIC_LABELS[m]

        def col_of(rec: Any, label: str = label) -> Column | None:
            return None if rec.level == "dataset" else (rec.group, label)

        if m in present:
            _put(t, aggregate(scores_frame(results, m)), col_of)
        _put(t, published(with_paper, m), col_of, "published")
    return t


def dataset_columns() -> list[Column]:
    """A column per dataset grouped per memory type, each type's "Mean", then ("Mean", "Dataset" | "Type")."""
    columns = []
    for m in MEMORY_TYPES:
        columns += [(m, t.name) for t in all_tasks() if t.memory_type == m] + [(m, "Mean")]
    return [*columns, ("Mean", "Dataset"), ("Mean", "Type")]


def dataset_column(rec: Any) -> Column:
    """The datasets-view column of an ``aggregate`` record."""
    if rec.level == "dataset":
        return (rec.memory_type, rec.group)
    if rec.level == "type":
        return (rec.group, "Mean")
    return ("Mean", "Dataset" if rec.level == "mean_dataset" else "Type")


def datasets_table(results: list[DatasetResult], metric: str, with_paper: str | None = None) -> Table:
    """Every column of the datasets view (none dropped): the leaderboard's source as well as ``lmeb table``'s."""
    t = _run_table(results, dataset_columns(), title=f"LMEB: {metric} (%) per dataset", view="datasets",
                   metric=metric)
    if results:
        _put(t, aggregate(scores_frame(results, metric)), dataset_column)
    if with_paper:
        if metric not in PAPER_METRICS:
            raise LmebError(f"the paper publishes only {', '.join(PAPER_METRICS)}, not {metric}")
        _put(t, published(with_paper, metric), dataset_column, "published")
    return t


def _datasets_view(results: list[DatasetResult], metric: str, with_paper: str | None, all_columns: bool) -> Table:
    t = datasets_table(results, metric, with_paper)
    if not all_columns:
        hidden = [c for c in t.drop_empty_columns() if c[1] not in ("Mean", "Dataset", "Type")]
        if hidden:
            t.footnotes.append(f"{len(hidden)} dataset column(s) without results hidden "
                               "(--all-columns shows all 22)")
    return t


def _subsets_view(results: list[DatasetResult], metric: str, task: Task) -> Table:
    t = Table([(task.name, s) for s in task.subset_names] + [(task.name, "Mean")], view="subsets", metric=metric,
              title=f"LMEB: {metric} (%) per subset of {task.name}", complete_unit="subsets")
    frame = scores_frame([r for r in results if task_of(r).name == task.name], metric)
    if frame.empty:
        raise LmebError(f"no results for dataset {task.name}")
    base = _run_table([r for r in results if task_of(r).name == task.name], [])
    for labels in [r.labels for r in base.rows]:
        part = frame[(frame["model"] == labels[0]) & (frame["setting"] == labels[1])]
        if part.empty:
            continue
        row = t.row(labels)
        row.marks = base.row(labels).marks
        for rec in part.itertuples(index=False):
            row.cells[(task.name, rec.subset)] = Cell(rec.value * 100.0)
        ds = dataset_scores(part).iloc[0]
        row.cells[(task.name, "Mean")] = (Cell(ds["value"] * 100.0) if ds["complete"]
                                          else Cell(parts=f"{ds['n']}/{ds['total']}"))
        row.complete = f"{ds['n']}/{ds['total']}"
    t.footnotes = base.footnotes
    return t


def summary_cells(result: DatasetResult | None, metrics: tuple[str, ...] = PAPER_METRICS
                  ) -> tuple[list[str], bool, str | None]:
    """The run summary's score cells of one dataset's results (in memory, as the run returned them): the
    dataset score per metric (percent, 2 decimals) by the tables' one rule (``lmeb.report.aggregate``) when
    it has every registry subset; the subset's own scores when it holds exactly one (the one asked for);
    else ``n/N*`` (no mean over fewer subsets); "-" without results.
    Returns the cells, whether the dataset is complete, and the one subset whose scores they are (or None)."""
    if result is None:
        return ["-"] * len(metrics), True, None
    status = dataset_status(result)
    if not status.complete and len(result.subsets) == 1:
        (name, sub), = result.subsets.items()
        return [f"{100 * sub.scores[m]:.2f}" if is_number(sub.scores.get(m)) else "-" for m in metrics], False, name
    if not status.complete:
        return [status.parts + "*"] * len(metrics), False, None
    cells = []
    for m in metrics:
        ds = dataset_scores(scores_frame([result], m)) if m in available_metrics([result]) else None
        cells.append(f"{100 * ds['value'].iloc[0]:.2f}" if ds is not None and bool(ds["complete"].iloc[0]) else "-")
    return cells, True, None


SUMMARY_LEGEND = ("n/N* = the results file has n of the dataset's N subsets: no dataset score "
                  "(lmeb table --view subsets shows them)")


def _instructions_view(results: list[DatasetResult], with_paper: bool) -> Table:
    """w_inst - wo_inst per paper-view cell, a row per model with both settings (the paper's Table 3 - 2).

    A cell has a number only when both settings have one; else the count of the less complete side.
    """
    both = [m for m in sorted({r.model for r in results})
            if {r.setting for r in results if r.model == m} >= set(SETTINGS)]
    if not both and not with_paper:
        raise LmebError("no model has results in both settings (wo_inst and w_inst): nothing to subtract")
    runs = by_run(results)
    t = Table(paper_columns(), title="LMEB: instruction effect, w_inst - wo_inst (percentage points), "
              "N@10 and R@10 per memory type", view="instructions", metric="ndcg_at_10", ranked=False)
    t.formats = {c: "+.2f" for c in t.columns}
    mine = [r for r in results if r.model in both]
    present = set(available_metrics(mine))
    aggs = {m: aggregate(scores_frame(mine, m)) for m in PAPER_METRICS if m in present}
    for model in both:
        row = t.row((model, EFFECT, "run"))
        row.marks = run_marks(runs[(model, "w_inst")] + runs[(model, "wo_inst")], True)
        for m, agg in aggs.items():
            part = agg[agg["model"] == model]
            _put_effect(row, part, METRIC_LABELS[m])
            done = part[part["level"] == "mean_dataset"]  # n = complete datasets of each setting
            row.complete = f"{int(done['n'].min())}/{len(all_tasks())}"
    if with_paper:
        for m in PAPER_METRICS:
            wo, w = published("wo_inst", m), published("w_inst", m)
            common = sorted(set(wo["model"]) & set(w["model"]), key=list(wo["model"]).index)
            both_pub = pd.concat([wo[wo["model"].isin(common)], w[w["model"].isin(common)]])
            for model in common:
                _put_effect(t.row((model, EFFECT, "published")), both_pub[both_pub["model"] == model],
                            METRIC_LABELS[m])
    _mark_notes(t)
    return t


def _put_effect(row: Any, agg: pd.DataFrame, label: str) -> None:
    """One model's w_inst - wo_inst cells of one metric from its ``aggregate`` rows of both settings."""
    cells = {(rec.setting, rec.group): rec for rec in agg.itertuples(index=False) if rec.level != "dataset"}
    for group in [*MEMORY_TYPES, MEAN_DATASET, MEAN_TYPE]:
        wo, w = cells.get(("wo_inst", group)), cells.get(("w_inst", group))
        if wo is None or w is None:
            continue
        if wo.complete and w.complete:
            row.cells[(group, label)] = Cell((w.value - wo.value) * 100.0)
        else:
            worse = min((x for x in (wo, w) if not x.complete), key=lambda x: x.n)
            row.cells[(group, label)] = Cell(parts=f"{worse.n}/{worse.total}")
