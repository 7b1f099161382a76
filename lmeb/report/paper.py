"""The LMEB paper's published rows (Tables 2 and 3), to show beside runs and to diff against.

The paper publishes, per model and setting (w/o and w/ instructions), N@10 and R@10 per memory type
and the two means, in percent with 2 decimals (``lmeb/spec/paper_table2_table3.json``). Frames here
use the same long shape as ``lmeb.report.aggregate.aggregate`` (values as fractions, ``published`` True).
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd

from lmeb.errors import LmebError
from lmeb.report.aggregate import (
    DATASET_COLUMNS,
    MEAN_DATASET,
    MEAN_TYPE,
    METRIC_LABELS,
    PAPER_METRICS,
    GroupScore,
    aggregate,
    aggregate_datasets,
    available_metrics,
    groups_frame,
    missing_note,
    registry_counts,
    resolve_model,
    scores_frame,
)
from lmeb.results.identity import source_label
from lmeb.tasks.registry import MEMORY_TYPES, all_tasks
from lmeb.tasks.settings import SETTINGS, check_setting

PAPER_FILE = Path(__file__).resolve().parents[1] / "spec" / "paper_table2_table3.json"
LEVELS = {"mean_dataset": MEAN_DATASET, "mean_type": MEAN_TYPE}


@dataclass(frozen=True)
class PaperRow:
    """One model's row of Table 2 (wo_inst) or Table 3 (w_inst); scores in percent."""

    model: str
    setting: str
    size: str
    dim: int | None
    types: dict[str, dict[str, float]]  # memory type -> metric -> percent
    mean_dataset: dict[str, float]
    mean_type: dict[str, float]


@cache
def _load(path: Path = PAPER_FILE) -> dict[str, tuple[PaperRow, ...]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        out = {}
        for setting, rows in doc["settings"].items():
            out[setting] = tuple(
                PaperRow(model=r["model"], setting=setting, size=r.get("size", ""), dim=r.get("dim"),
                         types={m: dict(r[m.lower()]) for m in MEMORY_TYPES},
                         mean_dataset=dict(r["mean_dataset"]), mean_type=dict(r["mean_type"]))
                for r in rows)
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise LmebError(f"{path}: not a paper table file ({exc.__class__.__name__}: {exc})") from None
    return out


def paper_rows(setting: str) -> list[PaperRow]:
    """The published rows of one setting, in the paper's order."""
    check_setting(setting)
    return list(_load()[setting])


def paper_model(name: str, setting: str) -> PaperRow:
    """A published row by model name (exact, then case-insensitive, then a preset's name or hub id, e.g.
    ``KaLM_Embedding_V2.5`` or ``BAAI/bge-m3``); unknown names list close ones."""
    from lmeb.models.presets import find_preset

    rows = paper_rows(setting)
    preset = find_preset(name)
    for match in (lambda r: r.model == name, lambda r: r.model.lower() == name.lower(),
                  lambda r: preset is not None and r.model == preset.paper_name):
        found = [r for r in rows if match(r)]
        if found:
            return found[0]
    names = [r.model for r in rows]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.4) or difflib.get_close_matches(
        name.lower(), [n.lower() for n in names], n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else f" (published models: {', '.join(names)})"
    raise LmebError(f"unknown paper model {name!r}{hint}")


def published_frame(setting: str, metric: str = "ndcg_at_10") -> pd.DataFrame:
    """The published type and mean cells of one setting, in ``lmeb.report.aggregate.aggregate``'s long shape."""
    if metric not in PAPER_METRICS:
        raise LmebError(f"the paper publishes only {', '.join(PAPER_METRICS)}, not {metric}")
    counts = registry_counts()
    rows = []
    for r in paper_rows(setting):
        for m in MEMORY_TYPES:
            rows.append(GroupScore(r.model, setting, level="type", memory_type=m, group=m,
                                   value=r.types[m][metric] / 100, n=counts[m], total=counts[m], complete=True,
                                   published=True))
        n = sum(counts.values())
        rows.append(GroupScore(r.model, setting, level="mean_dataset", memory_type="", group=MEAN_DATASET,
                               value=r.mean_dataset[metric] / 100, n=n, total=n, complete=True, published=True))
        rows.append(GroupScore(r.model, setting, level="mean_type", memory_type="", group=MEAN_TYPE,
                               value=r.mean_type[metric] / 100, n=len(MEMORY_TYPES), total=len(MEMORY_TYPES),
                               complete=True, published=True))
    return groups_frame(rows)


def recompute_means(row: PaperRow, metric: str) -> dict[str, float]:
    """Mean (Dataset) and Mean (Type) recomputed from the published type scores, in percent.

    The paper publishes only type scores, so each type score stands for each of that type's registry
    datasets (a type score is the mean of its datasets, so this weights types by their dataset counts
    2/6/8/6), and ``lmeb.report.aggregate.aggregate_datasets`` — the code that aggregates runs — does the rest.
    """
    datasets = pd.DataFrame(
        [(row.model, row.setting, t.memory_type, t.name, row.types[t.memory_type][metric] / 100, 1, 1, True, True)
         for t in all_tasks()], columns=DATASET_COLUMNS)
    agg = aggregate_datasets(datasets).set_index("level")
    return {level: float(agg.loc[level, "value"]) * 100 for level in LEVELS}


def check_published_means() -> pd.DataFrame:
    """Every published Mean (Dataset) and Mean (Type) cell beside its recomputation.

    Columns: setting, model, metric, level, published, recomputed, delta (recomputed - published),
    exact (the recomputation rounded to 2 decimals equals the published cell).
    """
    out = []
    for setting in SETTINGS:
        for r in paper_rows(setting):
            for metric in PAPER_METRICS:
                again = recompute_means(r, metric)
                for level in LEVELS:
                    pub = getattr(r, level)[metric]
                    out.append((setting, r.model, metric, level, pub, again[level], again[level] - pub,
                                round(again[level] + 1e-9, 2) == round(pub, 2)))
    return pd.DataFrame(out, columns=["setting", "model", "metric", "level", "published", "recomputed", "delta",
                                      "exact"])


@dataclass(frozen=True)
class PaperDiff:
    """A run against a paper row: the cells (``frame``) and what was compared (plain fields, not
    ``DataFrame.attrs``, which many pandas operations drop).

    ``frame`` columns: group (memory type or mean), metric ("N@10"/"R@10"), run, paper, delta (run - paper,
    percentage points), complete, parts. ``model``: the run's model as in the results; ``paper_model``:
    the paper's row name; ``missing``: what keeps the run from the means (datasets or subsets), or "";
    ``data_source``: the run's data source and task scope (``lmeb.results.identity``), also a column of ``frame``.
    """

    frame: pd.DataFrame
    model: str
    paper_model: str
    setting: str
    missing: str
    data_source: str = ""


def paper_diff(results: list, run_model: str, paper_name: str, setting: str = "wo_inst") -> PaperDiff:
    """Cell-by-cell run - paper for one model, on the paper-view cells the run has (percent).

    A run cell of an incomplete group has no value (run and delta NaN, complete False, parts "n/N" =
    parts complete / required): it is listed, never compared as a mean over fewer datasets.
    """
    row = paper_model(paper_name, setting)
    run = [r for r in results if r.setting == setting]
    model = resolve_model(run or results, run_model)
    if not run:
        raise LmebError(f"no results in setting {setting} (use --setting)")
    mine = [r for r in run if r.model == model]
    if not mine:
        raise LmebError(f"no results for {model} in setting {setting}")
    cells: dict[tuple[str, str], tuple[float, float, str]] = {}  # (group, label) -> run, paper, parts
    present = set(available_metrics(mine))
    for metric in PAPER_METRICS:
        label = METRIC_LABELS[metric]
        pub = published_frame(setting, metric)
        pub = pub[pub["model"] == row.model].set_index("group")["value"]
        if metric not in present:
            continue
        for rec in aggregate(scores_frame(mine, metric)).itertuples(index=False):
            if rec.level != "dataset":
                parts = "" if rec.complete else f"{rec.n}/{rec.total}"
                cells[(rec.group, label)] = (rec.value * 100.0, pub[rec.group] * 100.0, parts)
    out = []
    for group in [*MEMORY_TYPES, MEAN_DATASET, MEAN_TYPE]:
        for metric in PAPER_METRICS:
            a, b, parts = cells.get((group, METRIC_LABELS[metric]), (math.nan, math.nan, ""))
            if b == b and (a == a or parts):  # the paper's cell and the run's number or its incomplete count
                out.append((group, METRIC_LABELS[metric], a, b, a - b, not parts, parts))
    frame = pd.DataFrame(out, columns=["group", "metric", "run", "paper", "delta", "complete", "parts"])
    source = ", ".join(sorted({source_label(r) for r in mine}))
    frame["data_source"] = source  # in every format: a delta from synthetic data is never taken for a real one
    return PaperDiff(frame, model=model, paper_model=row.model, setting=setting, missing=missing_note(mine),
                     data_source=source)
