"""Paired per-query comparison of two runs: mean deltas, sign-flip randomization tests, bootstrap CIs.

A side is a model in a setting; ``MODEL@w_inst`` vs ``MODEL@wo_inst`` compares one model's two
settings (the instruction effect) with the same tests. Inputs are the per-query sidecars of the results
files. Queries are aligned by query id within each subset both sides have (a query missing from one
side, or with a NaN value on either side, is left out; the row says how many queries were compared).

Pooling rule, matching "dataset = mean of its subsets": a dataset's score is the mean over its common
subsets of the per-query mean in each subset, so the dataset delta is the weighted sum of per-query
deltas with weight ``1 / (S * n_s)`` for a query of subset ``s`` (``S`` subsets, ``n_s`` queries in
``s``): every subset weighs the same however many queries it has. A memory type and Mean (Dataset)
weigh their common datasets the same: weight ``1 / (D * S_d * n_s)``; Mean (Type) weighs the types
the same. Rows carry ``complete``/``parts``: ``lmeb.compare.table`` shows an incomplete group as
``n/N*`` (no mean over fewer parts, the tables' rule).

- Test (``lmeb.compare.resampling``): paired randomization (sign flip). Under H0 the two sides' values of a
  query are exchangeable, so each per-query delta's sign is flipped at random; the statistic is the
  weighted delta above;
  two-sided p = share of flips with ``|T*| >= |T|`` (relative tolerance 100 machine epsilons, as
  scipy). With ``2**n <= resamples`` all ``2**n`` flips are enumerated (exact p, as
  ``scipy.stats.permutation_test(permutation_type="samples")``); otherwise ``resamples`` random flips
  and p = (count + 1) / (resamples + 1).
- Confidence intervals: percentile bootstrap (95%), resampling queries with replacement within each
  subset (stratified, so subset weights stay fixed), the same resampled queries for both models (so the
  delta's interval is paired); a dataset's and the overall interval come from the same resamples.

Everything is deterministic for a seed (one ``numpy.random.Generator``, used in a fixed order).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lmeb.compare.resampling import (
    bootstrap_means,
    exact_p,
    is_exact,
    mc_p,
    null_samples,
    percentile_ci,
)
from lmeb.errors import LmebError, LmebWarning
from lmeb.report.aggregate import MEAN_DATASET, MEAN_TYPE, registry_counts, resolve_model
from lmeb.results.dataset_result import DatasetResult, sidecar_path
from lmeb.results.identity import source_label, split_by_source
from lmeb.tasks.registry import MEMORY_TYPES, all_tasks, get_task
from lmeb.tasks.settings import SETTINGS

_REBUILD = "(rerun lmeb run for them: it rebuilds them)"  # what to do about missing per-query sidecars
TIE = 5e-5  # |delta| below half a unit of the tables' last digit (0.01 percentage points) is a tie
ALPHA = 0.05


# ----------------------------------------------------------------------------------------------- pairing
@dataclass
class PairedSubset:
    """One subset's aligned per-query values of both models."""

    dataset: str
    memory_type: str
    subset: str
    query_ids: list[str]
    a: np.ndarray
    b: np.ndarray
    dropped: int = 0  # queries of either side not compared (missing on the other side or NaN)


Side = tuple[str, str]  # (model, setting)


def parse_side(name: str) -> tuple[str, str | None]:
    """``MODEL@w_inst`` -> (MODEL, "w_inst"); a name without a setting suffix -> (name, None)."""
    model, at, setting = name.rpartition("@")
    return (model, setting) if at and setting in SETTINGS and model else (name, None)


def _index(results: list[DatasetResult], side: Side) -> dict[tuple[str, str], tuple[list, list]]:
    out = {}
    for r in results:
        if (r.model, r.setting) != side:
            continue
        task = get_task(r.task_name)
        for name, sub in r.subsets.items():
            out[(task.name, task.subset(name).name)] = (sub.query_ids, sub.per_query)
    return out


def missing_sidecars(results: list[DatasetResult], sides: tuple[Side, ...]) -> list[str]:
    """The per-query files of ``sides``' results files that hold subsets but no per-query values."""
    return sorted(str(sidecar_path(r.path)) for r in results if (r.model, r.setting) in sides and r.path
                  and r.subsets and not any(s.query_ids for s in r.subsets.values()))


def side_label(side: Side, other: Side) -> str:
    """The model name, with ``@setting`` when the two sides differ in setting."""
    return side[0] if side[1] == other[1] else f"{side[0]}@{side[1]}"


def paired_subsets(results: list[DatasetResult], side_a: Side, side_b: Side, metric: str) -> list[PairedSubset]:
    """The subsets both sides have with per-query values of ``metric``, aligned by query id, registry order."""
    ia, ib = _index(results, side_a), _index(results, side_b)
    common = set(ia) & set(ib)
    if not common:
        where = f"in setting {side_a[1]}" if side_a[1] == side_b[1] else f"({side_a[1]} vs {side_b[1]})"
        raise LmebError(f"{side_label(side_a, side_b)} and {side_label(side_b, side_a)} share no subset {where}")
    have = {m for q, pq in list(ia.values()) + list(ib.values()) if q for m in pq}
    missing = missing_sidecars(results, (side_a, side_b))
    if not have:
        raise LmebError(f"no per-query values found: {', '.join(missing) or 'the .per_query.json sidecars'} "
                        f"missing {_REBUILD}")
    if metric not in have:
        raise LmebError(f"no per-query values for metric {metric!r} (available: {', '.join(sorted(have))})")
    out = []
    left: dict[str, str] = {}  # dataset (or dataset/subset) -> why it is not compared
    datasets_of = ({d for d, _ in ia}, {d for d, _ in ib})
    for key in sorted(set(ia) ^ set(ib)):
        mine, only = (0, side_label(side_a, side_b)) if key in ia else (1, side_label(side_b, side_a))
        name = "/".join(key) if key[0] in datasets_of[1 - mine] else key[0]
        left.setdefault(name, f"only {only} has results for it")
    for task in all_tasks():
        for subset in task.subset_names:
            if (task.name, subset) not in common:
                continue
            (qa, ma), (qb, mb) = ia[(task.name, subset)], ib[(task.name, subset)]
            if not qa or not qb:
                continue  # a missing sidecar: named below
            if metric not in ma or metric not in mb:
                left[f"{task.name}/{subset}"] = f"no per-query values of {metric}"
                continue
            vb = dict(zip(qb, mb[metric], strict=True))
            ids, a, b = [], [], []
            for q, x in zip(qa, ma[metric], strict=True):
                y = vb.get(q)
                if y is None or x is None or math.isnan(x) or math.isnan(y):
                    continue
                ids.append(q)
                a.append(x)
                b.append(y)
            if ids:
                out.append(PairedSubset(task.name, task.memory_type, subset, ids, np.array(a), np.array(b),
                                        dropped=len(qa) + len(qb) - 2 * len(ids)))
            else:
                left[f"{task.name}/{subset}"] = "no query id in common (the two runs used different queries)"
    if not out:
        raise LmebError(f"{side_a[0]} and {side_b[0]} have no aligned per-query values of {metric}"
                        + (f": {', '.join(missing)} missing {_REBUILD}" if missing else ""))
    if missing:
        warnings.warn(f"{', '.join(missing)} missing, so those datasets are left out of the comparison {_REBUILD}",
                      LmebWarning, stacklevel=2)
    if left:
        warnings.warn("left out of the comparison: " + "; ".join(f"{k} ({why})" for k, why in left.items()),
                      LmebWarning, stacklevel=2)
    return out


# ----------------------------------------------------------------------------------------------- compare
@dataclass
class Comparison:
    """The outcome of ``compare``: a row per subset, per dataset, type and mean, and a win/tie/loss summary.

    ``datasets`` rows (levels dataset, type, mean_dataset, mean_type) hold the pooled estimate over the
    subsets both sides have, with ``complete`` (the group has all its registry parts) and ``parts``
    ("n/N" parts complete). Renderings follow the tables' rule: an incomplete group shows ``n/N*``,
    no mean; only its complete parts (subsets with ``--subsets``) show numbers.
    """

    model_a: str
    model_b: str
    setting: str  # the shared setting, or "w_inst vs wo_inst" when comparing settings
    metric: str
    seed: int
    resamples: int
    subsets: pd.DataFrame
    datasets: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    setting_a: str = ""
    setting_b: str = ""
    source_a: str = ""  # data source and task scope of each side (lmeb.results.identity)
    source_b: str = ""

    @property
    def label_a(self) -> str:
        return side_label((self.model_a, self.setting_a), (self.model_b, self.setting_b))

    @property
    def label_b(self) -> str:
        return side_label((self.model_b, self.setting_b), (self.model_a, self.setting_a))


_ROW_COLUMNS = ["level", "memory_type", "dataset", "subset", "subsets", "queries", "dropped", "a", "a_lo", "a_hi",
                "b", "b_lo", "b_hi", "delta", "delta_lo", "delta_hi", "p_value", "complete", "parts"]


def _sides(results: list[DatasetResult], model_a: str, model_b: str, setting: str | None) -> tuple[Side, Side]:
    """Each side's (model, setting): ``MODEL@SETTING``, else ``setting``, else the one setting both share."""
    (na, sa), (nb, sb) = parse_side(model_a), parse_side(model_b)
    a, b = resolve_model(results, na), resolve_model(results, nb)
    sa, sb = sa or setting or sb, sb or setting or sa
    if a == b and (sa is None or sa == sb):
        raise LmebError(f"both names refer to the same model {a}"
                        + ("" if sa else f"; compare its settings with {na}@w_inst {nb}@wo_inst"))
    if sa is None:
        both = sorted({r.setting for r in results if r.model == a} & {r.setting for r in results if r.model == b},
                      key=SETTINGS.index)
        if len(both) != 1:
            raise LmebError(f"{a} and {b} share settings {both or 'none'}; choose one with --setting")
        sa = sb = both[0]
    return (a, sa), (b, sb or sa)


def compare(results: list[DatasetResult], model_a: str, model_b: str, metric: str = "ndcg_at_10",
            setting: str | None = None, seed: int = 0, resamples: int = 10_000, level: float = 0.95) -> Comparison:
    """Compare A against B (delta = A - B) on the subsets both have; see the module docstring for the rules.

    A name may carry a setting, ``MODEL@w_inst``: ``compare(r, "m@w_inst", "m@wo_inst")`` is the
    instruction effect of one model, with the same paired tests.
    """
    if resamples < 1:
        raise LmebError("--resamples must be at least 1")
    results = split_by_source(results)  # never a side averaged over two data sources (lmeb.results.identity)
    side_a, side_b = _sides(results, model_a, model_b, setting)
    parts = paired_subsets(results, side_a, side_b, metric)
    rng = np.random.default_rng(seed)
    # One pass over the queries: per subset, bootstrap means of (A, B) and random sign-flip values of its
    # mean delta; a dataset (a type, an overall mean) averages its subsets' (datasets', types') draws, which
    # is a draw of the stratified bootstrap / of the sign-flip null of the pooled statistic.
    boots = bootstrap_means([np.column_stack([p.a, p.b]) for p in parts], resamples, rng)
    nulls = [null_samples((p.a - p.b) / len(p.a), resamples, rng) for p in parts]
    rows = [_row("subset", [p], boots[i], nulls[i], resamples, level) for i, p in enumerate(parts)]
    for row in rows:
        row.update(complete=True, parts="1/1")
    by_dataset: dict[str, list[int]] = {}
    for i, p in enumerate(parts):
        by_dataset.setdefault(p.dataset, []).append(i)
    ds_rows, ds_draws, done = [], {}, set()
    for name, idx in by_dataset.items():
        ds_draws[name] = (np.mean([boots[i] for i in idx], axis=0), np.mean([nulls[i] for i in idx], axis=0))
        row = _row("dataset", [parts[i] for i in idx], *ds_draws[name], resamples, level)
        total = len(get_task(name).subsets)
        row.update(subsets=f"{len(idx)}/{total}", complete=len(idx) == total, parts=f"{len(idx)}/{total}")
        done |= {name} if len(idx) == total else set()
        ds_rows.append(row)
    type_rows, type_draws = [], {}
    for mtype in MEMORY_TYPES:
        names = [n for n in by_dataset if get_task(n).memory_type == mtype]
        if not names:
            continue
        type_draws[mtype] = tuple(np.mean([ds_draws[n][k] for n in names], axis=0) for k in (0, 1))
        row = _row("type", [p for p in parts if p.memory_type == mtype], *type_draws[mtype], resamples, level)
        n_type = registry_counts()[mtype]
        n_done = sum(n in done for n in names)
        row.update(dataset=mtype, subsets=f"{len(names)}/{n_type} datasets", complete=n_done == n_type,
                   parts=f"{n_done}/{n_type}")
        type_rows.append(row)
    overall = _row("mean_dataset", parts, np.mean([d[0] for d in ds_draws.values()], axis=0),
                   np.mean([d[1] for d in ds_draws.values()], axis=0), resamples, level)
    n_all = len(all_tasks())
    overall.update(dataset=MEAN_DATASET, memory_type="", subsets=f"{len(by_dataset)}/{n_all} datasets",
                   complete=len(done) == n_all, parts=f"{len(done)}/{n_all}")
    types_done = sum(r["complete"] for r in type_rows)
    by_type = _row("mean_type", parts, np.mean([d[0] for d in type_draws.values()], axis=0),
                   np.mean([d[1] for d in type_draws.values()], axis=0), resamples, level, by_type=True)
    by_type.update(dataset=MEAN_TYPE, memory_type="", subsets=f"{len(type_rows)}/{len(MEMORY_TYPES)} types",
                   complete=types_done == len(MEMORY_TYPES), parts=f"{types_done}/{len(MEMORY_TYPES)}")
    subsets = pd.DataFrame(rows, columns=_ROW_COLUMNS)
    deltas = subsets["delta"]
    summary = {
        "subsets": len(subsets), "datasets": len(by_dataset),
        "wins": int((deltas > TIE).sum()), "ties": int((deltas.abs() <= TIE).sum()),
        "losses": int((deltas < -TIE).sum()),
        "significant_wins": int(((deltas > TIE) & (subsets["p_value"] < ALPHA)).sum()),
        "significant_losses": int(((deltas < -TIE) & (subsets["p_value"] < ALPHA)).sum()),
    }
    frame = pd.DataFrame([*ds_rows, *type_rows, overall, by_type], columns=_ROW_COLUMNS)
    shared = side_a[1] if side_a[1] == side_b[1] else f"{side_a[1]} vs {side_b[1]}"
    source_a, source_b = (", ".join(sorted({source_label(r) for r in results if (r.model, r.setting) == side}))
                          for side in (side_a, side_b))
    return Comparison(side_a[0], side_b[0], shared, metric, seed, resamples, subsets, frame, summary,
                      side_a[1], side_b[1], source_a, source_b)


def pooled_weights(parts: list[PairedSubset], by_type: bool = False) -> np.ndarray:
    """Per-query weights of the pooling rule, in the order of ``parts``: ``1 / (D * S_d * n_s)`` (D datasets,
    S_d subsets of the query's dataset, n_s queries of its subset); ``by_type``: ``1 / (T * D_t * S_d * n_s)``
    (Mean (Type): every type weighs the same, T types, D_t datasets of the query's type)."""
    per_ds: dict[str, int] = {}
    for p in parts:
        per_ds[p.dataset] = per_ds.get(p.dataset, 0) + 1
    if not by_type:
        return np.concatenate([np.full(len(p.a), 1.0 / (len(per_ds) * per_ds[p.dataset] * len(p.a))) for p in parts])
    per_type: dict[str, set[str]] = {}
    for p in parts:
        per_type.setdefault(p.memory_type, set()).add(p.dataset)
    return np.concatenate([np.full(len(p.a), 1.0 / (len(per_type) * len(per_type[p.memory_type])
                                                    * per_ds[p.dataset] * len(p.a))) for p in parts])


def _row(level_name: str, parts: list[PairedSubset], boot: np.ndarray, null: np.ndarray,
         resamples: int, level: float, by_type: bool = False) -> dict[str, Any]:
    """One output row: point estimates with the pooling weights, percentile CIs, sign-flip p."""
    w = pooled_weights(parts, by_type)
    a, b = np.concatenate([p.a for p in parts]), np.concatenate([p.b for p in parts])
    wd = w * (a - b)
    boot3 = np.column_stack([boot, boot[:, 0] - boot[:, 1]])
    lo, hi = percentile_ci(boot3, level)
    p_value = exact_p(wd) if is_exact(wd.size, resamples) else mc_p(null, wd)
    first = parts[0]
    return {"level": level_name, "memory_type": first.memory_type, "dataset": first.dataset,
            "subset": first.subset if level_name == "subset" else "", "subsets": len(parts), "queries": int(a.size),
            "dropped": sum(p.dropped for p in parts), "a": float(w @ a), "a_lo": lo[0], "a_hi": hi[0],
            "b": float(w @ b), "b_lo": lo[1], "b_hi": hi[1], "delta": float(wd.sum()), "delta_lo": lo[2],
            "delta_hi": hi[2], "p_value": p_value}
