"""Scores in long form and the paper's aggregation, with completeness: the one rule every view follows.

Aggregation follows the LMEB paper (``datasets.json`` notes): a dataset score is the mean over its
subsets; a memory-type score is the mean over its datasets; Mean (Dataset) is the mean over the 22
datasets; Mean (Type) is the mean of the 4 type scores.

No mean is ever taken over an incomplete group: a mean over fewer datasets is a different number
from the benchmark's and must not pass for it. A dataset is complete only with ALL its registry
subsets, a type only with all its datasets complete, Mean (Dataset) only with all 22 datasets complete,
Mean (Type) only with all 4 type scores. An incomplete group has no value (NaN in the frames, beside
``n``/``total`` = parts complete / parts required and ``complete`` False). Tables (``lmeb.report.views``),
the published rows (``lmeb.report.paper``), the leaderboard, ``compare``, ``diff``, ``export-mteb`` and the run
summary all take their numbers and their completeness from here. Values are fractions (mteb's convention).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from lmeb.errors import LmebError
from lmeb.results.dataset_result import DatasetResult, model_dir_name, read_results
from lmeb.results.identity import split_by_source
from lmeb.tasks.registry import MEMORY_TYPES, Task, all_tasks, get_task

PAPER_METRICS = ("ndcg_at_10", "R_cap_at_10")
METRIC_LABELS = {"ndcg_at_10": "N@10", "R_cap_at_10": "R@10"}
MEAN_DATASET = "Mean (Dataset)"
MEAN_TYPE = "Mean (Type)"

SCORE_COLUMNS = ["model", "setting", "memory_type", "dataset", "subset", "value", "published"]
# the long shapes of ``dataset_scores`` and ``aggregate`` (``lmeb.report.paper`` builds published rows in them)
DATASET_COLUMNS = ["model", "setting", "memory_type", "dataset", "value", "n", "total", "complete", "published"]


@dataclass(frozen=True)
class GroupScore:
    """One aggregate of one run: a dataset, a memory type or a mean (a row of ``aggregate``'s frame).

    ``value`` is a fraction, NaN when incomplete; ``n``/``total`` = parts complete / parts required.
    """

    model: str
    setting: str
    level: str  # "dataset" | "type" | "mean_dataset" | "mean_type"
    memory_type: str
    group: str  # dataset name, type name, "Mean (Dataset)" or "Mean (Type)"
    value: float
    n: int
    total: int
    complete: bool
    published: bool


AGG_COLUMNS = [f.name for f in fields(GroupScore)]


def groups_frame(rows: Iterable[GroupScore]) -> pd.DataFrame:
    """GroupScores as ``aggregate``'s long frame."""
    return pd.DataFrame([astuple(r) for r in rows], columns=AGG_COLUMNS)


def as_results(results_or_dirs: Any) -> list[DatasetResult]:
    """Results given as DatasetResult objects, or directories (one or many) to load them from; a model with
    results from two data sources or task scopes becomes one model per source (``lmeb.results.identity``)."""
    if isinstance(results_or_dirs, (str, Path)):
        return split_by_source(read_results([results_or_dirs]))
    items = list(results_or_dirs or [])
    if all(isinstance(r, DatasetResult) for r in items):
        return split_by_source(items)
    if all(isinstance(r, (str, Path)) for r in items):
        return split_by_source(read_results(items))
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


def task_of(result: DatasetResult) -> Task:
    """The registry task of a result (mteb spellings accepted); an unknown name is an error naming the file."""
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
        task = task_of(r)
        for name, sub in r.subsets.items():
            if metric not in sub.scores:
                continue
            subset = _subset_name(task, name, r)
            key = (r.model, r.setting, task.name, subset)
            if key in seen:
                raise LmebError(f"{r.path}: {task.name}/{subset} of {r.model} ({r.setting}) is also in {seen[key]}")
            seen[key] = r.path
            rows.append((r.model, r.setting, task.memory_type, task.name, subset, float(sub.scores[metric]), False))
    frame = pd.DataFrame(rows, columns=SCORE_COLUMNS)
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
            rows.append(GroupScore(model, setting, level="type", memory_type=m, group=m,
                                   value=types.get(m, math.nan), n=len(part), total=counts[m], complete=complete,
                                   published=published))
        total = sum(counts.values())
        rows.append(GroupScore(model, setting, level="mean_dataset", memory_type="", group=MEAN_DATASET,
                               value=done["value"].mean() if len(done) == total else math.nan, n=len(done),
                               total=total, complete=len(done) == total, published=published))
        all_types = len(types) == len(MEMORY_TYPES)
        rows.append(GroupScore(model, setting, level="mean_type", memory_type="", group=MEAN_TYPE,
                               value=sum(types.values()) / len(types) if all_types else math.nan, n=len(types),
                               total=len(MEMORY_TYPES), complete=all_types, published=published))
    return groups_frame(rows)


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



# ----------------------------------------------------------------------------------------- completeness
@dataclass(frozen=True)
class DatasetStatus:
    """Which registry subsets of one dataset a run has: complete only with all of them."""

    model: str
    setting: str
    dataset: str
    present: int
    total: int
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def parts(self) -> str:
        return f"{self.present}/{self.total}"


def dataset_status(result: DatasetResult) -> DatasetStatus:
    """The completeness of one results file against the registry's subsets."""
    task = task_of(result)
    have = {_subset_name(task, name, result) for name in result.subsets}
    missing = tuple(s for s in task.subset_names if s not in have)
    return DatasetStatus(result.model, result.setting, task.name, len(task.subset_names) - len(missing),
                         len(task.subset_names), missing)


def missing_note(results: Sequence[DatasetResult]) -> str:
    """What keeps one run (one model and setting) from the benchmark's means, in one line; "" when complete.

    e.g. ``20/22 datasets complete; not run: QASPER; incomplete: LoCoMo 4/5 subsets (missing adversarial)``.
    """
    statuses = [dataset_status(r) for r in results]
    done = {s.dataset for s in statuses if s.complete}
    if len(done) == len(all_tasks()):
        return ""
    have = {s.dataset for s in statuses}
    not_run = [t.name for t in all_tasks() if t.name not in have]
    partial = [f"{s.dataset} {s.parts} subsets (missing {listed(s.missing)})" for s in statuses if not s.complete]
    parts = [f"{len(done)}/{len(all_tasks())} datasets complete"]
    if not_run:
        parts.append(f"not run: {listed(not_run)}")
    if partial:
        parts.append(f"incomplete: {'; '.join(partial)}")
    return "; ".join(parts)


def listed(names: Sequence[str], limit: int = 6) -> str:
    """Names joined by commas, the ones past ``limit`` counted ("a, b and 3 more")."""
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def by_run(results: Iterable[DatasetResult]) -> dict[tuple[str, str], list[DatasetResult]]:
    """Results grouped per run (model, setting), in order of first appearance."""
    out: dict[tuple[str, str], list[DatasetResult]] = {}
    for r in results:
        out.setdefault((r.model, r.setting), []).append(r)
    return out


def ignores_instructions(results: Iterable[DatasetResult]) -> bool:
    """True when the provenance says the model cannot use instructions (BM25: its w_inst equals its wo_inst)."""
    return any(r.provenance.get("uses_instructions") is False for r in results)


# ------------------------------------------------------------------------------------------ model names
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
