"""How retrieval holds up as memory grows: the growth table and figure from scoped runs (``lmeb.engine.growth``).

A run in scope ``xN`` or ``corpus`` is stored under ``MODEL@xN`` / ``MODEL@corpus``; this view puts
them back together: one row per (base model, setting), per dataset a column per scope in growing order
(pool, 4x, 16x, 64x, ..., corpus), the dataset score (mean over its subsets, only when complete, the
tables' rule, ``lmeb.report.aggregate``) in percent. The figure draws the same numbers, one line per model
and one panel per dataset, against the mean number of documents each query was ranked among.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from lmeb.engine.growth import CORPUS, POOL, split_scoped_name
from lmeb.errors import LmebError
from lmeb.report.aggregate import dataset_scores, scores_frame
from lmeb.report.table import Cell, Table
from lmeb.results.dataset_result import DatasetResult


def scope_order(scope: str) -> float:
    return 0.0 if scope == POOL else float("inf") if scope == CORPUS else float(scope[1:])


def scope_label(scope: str) -> str:
    return scope if scope in (POOL, CORPUS) else f"{scope[1:]}x"


def searched_docs(results: list[DatasetResult]) -> dict[tuple[str, str], float]:
    """(dataset, scope) -> mean documents searched per query (mean over subsets), from the scoped runs'
    provenance; a pool's size is recorded by any scoped run of the same dataset."""
    found: dict[tuple[str, str], list[float]] = defaultdict(list)
    pools: dict[str, list[float]] = defaultdict(list)
    for r in results:
        _, scope = split_scoped_name(r.model)
        for sub in r.subsets.values():
            info = sub.provenance.get("scope")
            if isinstance(info, dict):
                found[(r.task_name, scope)].append(float(info.get("searched_docs", 0.0)))
                pools[(r.task_name, sub.subset)].append(float(info.get("pool_docs", 0.0)))
    out = {key: sum(v) / len(v) for key, v in found.items()}
    for dataset in {d for d, _ in pools}:
        sizes = [v[0] for (d, _), v in pools.items() if d == dataset]
        out[(dataset, POOL)] = sum(sizes) / len(sizes)
    return out


def growth_frame(results: list[DatasetResult], metric: str = "ndcg_at_10") -> Any:
    """Dataset scores with the scope split out: model (base), scope, setting, dataset, value, complete."""
    datasets = dataset_scores(scores_frame(results, metric))
    split = [split_scoped_name(m) for m in datasets["model"]]
    return datasets.assign(model=[b for b, _ in split], scope=[s for _, s in split])


def growth_table(results: list[DatasetResult], metric: str = "ndcg_at_10") -> Table:
    """The growth view (see the module docstring)."""
    frame = growth_frame(results, metric)
    if not (frame["scope"] != POOL).any():
        raise LmebError("no scoped runs in the results: run with --distractors 4,16,64 and --scope corpus first "
                        "(docs/growth.md)")
    scopes = sorted(set(frame["scope"]), key=scope_order)
    datasets = list(dict.fromkeys(frame["dataset"]))
    columns = [(d, scope_label(s)) for d in datasets for s in scopes
               if ((frame["dataset"] == d) & (frame["scope"] == s)).any()]
    t = Table(columns, title=f"LMEB: {metric} (%) as memory grows (pool -> distractors -> whole corpus)",
              label_names=("model", "setting"), view="growth", metric=metric, ranked=False)
    for rec in frame.itertuples(index=False):
        row = t.row((rec.model, rec.setting))
        value = None if not rec.complete else 100.0 * rec.value
        row.cells[(rec.dataset, scope_label(rec.scope))] = Cell(value, None if rec.complete else
                                                                f"{rec.n}/{rec.total}")
    sizes = searched_docs(results)
    for d in datasets:
        known = [f"{scope_label(s)} {sizes[(d, s)]:,.0f}" for s in scopes if (d, s) in sizes]
        if known:
            t.footnotes.append(f"{d}: mean documents per query: {', '.join(known)}")
    t.footnotes.append("pool = each query among its scene's candidates (LMEB); Nx = the pool plus N times its "
                       "size in documents of other scenes (seeded draw, in provenance); corpus = the whole subset "
                       "corpus. A column is a scope's run (MODEL@xN, MODEL@corpus)")
    return t


def write_growth_figure(results: list[DatasetResult], path: Path, metric: str = "ndcg_at_10") -> Path:
    """A PNG: per dataset, the score against mean documents per query (log scale), one line per model."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    frame = growth_frame(results, metric)
    frame = frame[frame["complete"]]
    sizes = searched_docs(results)
    datasets = list(dict.fromkeys(frame["dataset"]))
    if not datasets:
        raise LmebError("no complete dataset in the results to draw")
    fig = Figure(figsize=(4.2 * len(datasets), 3.6))
    FigureCanvasAgg(fig)
    for i, dataset in enumerate(datasets, start=1):
        ax = fig.add_subplot(1, len(datasets), i)
        part = frame[frame["dataset"] == dataset]
        for (model, setting), g in part.groupby(["model", "setting"], sort=True):
            g = g.assign(order=g["scope"].map(scope_order)).sort_values("order")
            xs = [sizes.get((dataset, s), float("nan")) for s in g["scope"]]
            ax.plot(xs, 100 * g["value"], marker="o", label=f"{model} ({setting})")
            labels: dict[tuple[float, float], list[str]] = {}  # scopes at one point (16x = corpus) share a label
            for x, y, s in zip(xs, 100 * g["value"], g["scope"], strict=True):
                labels.setdefault((x, y), []).append(scope_label(s))
            for (x, y), names in labels.items():
                ax.annotate(" = ".join(names), (x, y), fontsize=7, textcoords="offset points", xytext=(2, 3))
        ax.set_xscale("log")
        ax.set_title(dataset)
        ax.set_xlabel("documents per query (memory size)")
        ax.set_ylabel(f"{metric} (%)")
        ax.grid(alpha=0.3)
    max(fig.axes, key=lambda a: len(a.get_lines())).legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from lmeb.files import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path


def growth_figures(results: list[DatasetResult], folder: Path) -> list[dict]:
    """The leaderboard's growth figure entry (``[]`` when no scoped run is among ``results``)."""
    if not any(split_scoped_name(r.model)[1] != POOL for r in results):
        return []
    path = write_growth_figure(results, Path(folder) / "growth.png")
    return [{"file": f"{Path(folder).name}/{path.name}",
             "caption": "ndcg@10 as memory grows: each query's pool, pool + distractors, whole corpus (one line "
                        "per model)"}]
