"""``--fusion-weights auto``: a hybrid's weights per memory type by query-level k-fold cross-validation.

LMEB has only a test split, so weights tuned on it and scored on it would flatter the hybrid. Instead,
before the run, every selected subset's parts are run once (``tune``) and each query's ``ndcg_at_10`` is
computed for every point of a grid of convex weights (non-negative multiples of ``GRID_STEP`` summing to
1). A query's fold is fixed by a digest of (seed, dataset, subset, query id). Per memory type and per
fold, the weights are the grid point with the best mean over the OTHER folds' queries (pooled over the
type's subsets; the first best point on a tie), and that fold's queries are then scored with them. The
chosen weights per fold are recorded in each subset's provenance (``fusion_cv``) and the tables mark the
row (``lmeb.report.views``): the weights were cross-validated on the test queries themselves.
"""

from __future__ import annotations

from itertools import product
from typing import Any

import numpy as np

from lmeb.digest import text_digest
from lmeb.engine.fusion import fuse_runs
from lmeb.engine.metrics import evaluate
from lmeb.engine.retrieval import candidate_rows

FOLDS = 5
GRID_STEP = 0.1
METRIC = "ndcg_at_10"
CUTOFF = 10  # METRIC's depth: fusing deeper than it changes nothing the tuning measures


def simplex_grid(parts: int, step: float = GRID_STEP) -> list[list[float]]:
    """Every weight vector of ``parts`` non-negative multiples of ``step`` summing to 1, in a fixed order."""
    n = round(1 / step)
    return [[c / n for c in combo] for combo in product(range(n + 1), repeat=parts) if sum(combo) == n]


def fold_of(seed: int, task: str, subset: str, qid: str, folds: int = FOLDS) -> int:
    """The query's fold: a digest of (seed, dataset, subset, query id), so it never depends on order."""
    return int.from_bytes(text_digest(f"{seed}\0{task}\0{subset}\0{qid}")[:8], "big") % folds


def choose(values: np.ndarray, folds: np.ndarray, grid: list[list[float]], n_folds: int) -> list[list[float]]:
    """Per fold, the grid point whose mean over the other folds' queries is best (``values``: grid x queries)."""
    chosen = []
    for f in range(n_folds):
        train = folds != f
        if not train.any():
            chosen.append(grid[len(grid) // 2])
            continue
        chosen.append(grid[int(np.argmax(values[:, train].mean(axis=1)))])
    return chosen


def tune(strategy: Any, runner: Any, selections: list) -> dict[str, list[list[float]]]:
    """Weights per fold for each memory type of ``selections`` (the tuning pass; see the module docstring).

    ``strategy``: the hybrid's retrieval strategy (``lmeb.engine.hybrid.HybridRetrieval``: its ``hybrid`` and the
    parts' strategies), which calls this before the run."""
    from lmeb.data.mteb_format import open_reader
    from lmeb.ordering import DocIndex

    hybrid = strategy.hybrid
    grid = simplex_grid(len(hybrid.parts))
    per_type: dict[str, tuple[list[np.ndarray], list[int]]] = {}
    for sel in selections:
        reader = open_reader(sel.task, runner.root)  # as the run reads it: official layout or mteb copy
        strategy.new_dataset()
        for name in sel.subsets:
            subset = reader.load(name)
            rows = candidate_rows(subset)
            instruction = runner.instruction(subset)
            runs = [part.run(subset, rows, hybrid.depth, instruction, {}) for part in strategy.parts]
            judged = [q for q in subset.query_ids if subset.qrels.get(q)]
            if not judged:
                continue
            columns = []
            index = DocIndex.of(subset.corpus.ids)  # once per subset, not once per grid point
            for weights in grid:
                fused = fuse_runs(subset, runs, hybrid.fusion, weights, hybrid.rrf_k, CUTOFF, index=index)
                per_query = evaluate(subset.qrels, fused, (CUTOFF,)).per_query[METRIC]
                columns.append(np.array([per_query.get(q, 0.0) for q in judged], dtype=np.float64))
            values, folds = per_type.setdefault(sel.task.memory_type, ([], []))
            values.append(np.vstack(columns))
            folds.extend(fold_of(hybrid.cv_seed, sel.task.name, name, q, hybrid.cv_folds) for q in judged)
    return {memory_type: choose(np.hstack(values), np.asarray(folds), grid, hybrid.cv_folds)
            for memory_type, (values, folds) in per_type.items()}
