"""Fusion of several rankings of one query into one: the maths of ``lmeb.engine.hybrid``, over plain arrays,
and ``fuse_runs``, which applies it to every query of a subset at once.

Each part gives, per query, its top-``depth`` list in rank order: the corpus rows and their scores.
``fuse`` returns the union of those rows and one fused score per row; ranking them is left to
``lmeb.ordering.top_k`` (THE tie rule: score descending, then document id descending).

Methods (``METHODS``), with part weights ``w_i`` (default: 1 each for ``rrf``, ``1/n`` for the others):

* ``rrf`` — Reciprocal Rank Fusion (Cormack, Clarke & Buettcher, SIGIR 2009):
  ``sum_i w_i / (k + rank_i(d))``, rank from 1 in the part's own order, ``k = 60`` by default; a
  document absent from a part's list gets nothing from it (as in the paper, ranx and mteb).
* ``minmax`` — convex combination after min-max normalisation per query over each part's list:
  ``(s - min) / (max - min)`` (ranx ``norm="min-max"`` then ``wsum``; pyserini's hybrid).
* ``zscore`` — the same after z-score normalisation ``(s - mean) / std`` (population std; ranx's
  ``zmuv``).
* ``dbsf`` — Distribution-Based Score Fusion as mteb 2.26's ``fuse_dbsf`` defines it: each list mapped
  by ``(s - (mean - 3 std)) / (6 std)``, clipped to [0, 1], then the weighted sum.

A list whose scores are all equal (max = min, or std < 1e-9) carries no preference: its normalised
scores are all 0 (``minmax``, ``zscore``) or 0.5 (``dbsf``, mteb's value).

A document missing from a part's list (it is below that part's top ``depth``) gets the part's MINIMUM
normalised score over its list: it scored no better than the list's last document. For ``minmax`` this
is 0, exactly ranx's and mteb's convention (absent = adds 0); for ``dbsf`` and ``zscore`` ranx and mteb
add 0 instead, which would rank an unseen document above every listed one whose normalised score is
negative (``zscore``) — the minimum is the consistent choice. Whenever every part lists the query's
whole candidate pool (LMEB's pools are within the default depth, 1000) no document is missing and the
conventions agree.

Everything is vectorised per query over the union of rows (no Python loop over documents).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import TYPE_CHECKING

import numpy as np

from lmeb.engine.retrieval import Run
from lmeb.errors import LmebError
from lmeb.ordering import DEFAULT_K, DocIndex, select_segments
from lmeb.wording import counted

if TYPE_CHECKING:
    from lmeb.data.reader import SubsetData

METHODS = ("rrf", "minmax", "zscore", "dbsf")
DEFAULT_RRF_K = 60
_FLAT = 1e-9  # a list with a smaller std (or range) is flat: no preference


def check_method(method: str) -> str:
    """``method`` lower-cased if it is one of ``METHODS``, else a one-line error."""
    name = str(method).lower()
    if name not in METHODS:
        raise LmebError(f"unknown fusion {method!r} (expected one of {', '.join(METHODS)})")
    return name


def default_weights(method: str, parts: int) -> list[float]:
    """1 per part for ``rrf`` (Cormack et al.), ``1/n`` for the convex combinations."""
    return [1.0] * parts if method == "rrf" else [1.0 / parts] * parts


def check_weights(weights: Sequence[float] | None, method: str, parts: int) -> list[float]:
    """The weights as floats, one per part, finite and non-negative, not all 0 (None: the defaults)."""
    if weights is None:
        return default_weights(method, parts)
    out = [float(w) for w in weights]
    if len(out) != parts:
        raise LmebError(f"got {counted(len(out), 'fusion weight')} for {parts} parts")
    if not all(np.isfinite(out)) or min(out) < 0 or sum(out) <= 0:
        raise LmebError(f"fusion weights must be finite, non-negative and not all 0, got {out}")
    return out


def fuse(rows: Sequence[np.ndarray], scores: Sequence[np.ndarray], method: str, weights: Sequence[float],
         rrf_k: int = DEFAULT_RRF_K) -> tuple[np.ndarray, np.ndarray]:
    """(union of rows, fused score per row) of ONE query's part lists (each in the part's rank order)."""
    lists = [np.asarray(r, dtype=np.int64) for r in rows]
    sizes = [np.array([r.shape[0]], dtype=np.int64) for r in lists]
    n_docs = int(max((r.max() + 1 for r in lists if r.shape[0]), default=1))
    _, union, fused = fuse_segments(lists, [np.asarray(s, dtype=np.float64) for s in scores], sizes, n_docs,
                                    method, weights, rrf_k)
    return union, fused


def fuse_segments(rows: Sequence[np.ndarray], scores: Sequence[np.ndarray], sizes: Sequence[np.ndarray],
                  n_docs: int, method: str, weights: Sequence[float],
                  rrf_k: int = DEFAULT_RRF_K) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Many queries at once: (query, row, fused score) of every (query, document) in any part's list.

    Part ``i`` gives ``rows[i]``/``scores[i]``: its lists of all queries concatenated, query by query,
    each in the part's rank order, ``sizes[i][q]`` entries for query ``q`` (duplicate-free per query, as
    every lmeb run is); ``n_docs`` bounds the rows. The output is sorted by (query, row); the sum runs over
    the parts in order, in float64 (per element the same arithmetic as one query at a time).
    """
    n_queries = sizes[0].shape[0] if sizes else 0
    keys = [np.repeat(np.arange(n_queries, dtype=np.int64), n) * n_docs + r for r, n in zip(rows, sizes, strict=True)]
    if not keys or sum(k.shape[0] for k in keys) == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.float64)
    union, where = np.unique(np.concatenate(keys), return_inverse=True)
    query = union // n_docs
    fused = np.zeros(union.shape[0], dtype=np.float64)
    start = 0
    for part_scores, n, weight in zip(scores, sizes, weights, strict=True):
        total = int(n.sum())
        slot = where[start:start + total]
        start += total
        if method == "rrf":
            contrib = np.zeros(union.shape[0], dtype=np.float64)
            contrib[slot] = 1.0 / (rrf_k + _ranks(n))
        else:
            normal, floor = _normalise_segments(np.asarray(part_scores, dtype=np.float64), n, method)
            contrib = floor[query]
            contrib[slot] = normal
        fused += weight * contrib
    return query, union % n_docs, fused


def _ranks(sizes: np.ndarray) -> np.ndarray:
    """1, 2, ... within each segment of the given sizes, as float64."""
    total = int(sizes.sum())
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    return (np.arange(total, dtype=np.int64) - starts + 1).astype(np.float64)


def _normalise_segments(s: np.ndarray, sizes: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(each segment normalised by ``method``, per query the segment's minimum normalised score; 0 if empty)."""
    floor = np.zeros(sizes.shape[0], dtype=np.float64)
    if s.shape[0] == 0:
        return s, floor
    full = np.flatnonzero(sizes)
    starts = (np.cumsum(sizes) - sizes)[full]
    each = np.repeat(np.arange(full.shape[0]), sizes[full])
    if method == "minmax":
        lo, hi = np.minimum.reduceat(s, starts), np.maximum.reduceat(s, starts)
        spread = hi - lo
        flat = spread <= _FLAT
        out = (s - lo[each]) / np.where(flat, 1.0, spread)[each]
        out[flat[each]] = 0.0
    else:
        counts = sizes[full].astype(np.float64)
        mu = np.add.reduceat(s, starts) / counts
        centred = s - mu[each]
        sigma = np.sqrt(np.add.reduceat(centred * centred, starts) / counts)
        if method == "zscore":
            flat = sigma <= _FLAT
            out = centred / np.where(flat, 1.0, sigma)[each]
            out[flat[each]] = 0.0
        elif method == "dbsf":
            flat = sigma < _FLAT
            lower, width = mu - 3 * sigma, 6 * np.where(flat, 1.0, sigma)
            out = np.clip((s - lower[each]) / width[each], 0.0, 1.0)
            out[flat[each]] = 0.5
        else:
            raise LmebError(f"no normalisation for fusion {method!r}")
    floor[full] = np.minimum.reduceat(out, starts)
    return out, floor


def normalise(scores: np.ndarray, method: str) -> np.ndarray:
    """One part's list of scores (float64) normalised by ``method`` (``minmax``, ``zscore``, ``dbsf``)."""
    s = np.asarray(scores, dtype=np.float64)
    return _normalise_segments(s, np.array([s.shape[0]], dtype=np.int64), method)[0]


def fuse_runs(subset: SubsetData, runs: Sequence[Run], method: str, weights: Sequence[float], rrf_k: int,
              k: int = DEFAULT_K, index: DocIndex | None = None, query_ids: Sequence[str] | None = None) -> Run:
    """The fused run of one subset: per query, the parts' lists fused and ranked (top ``k``, tie rule).

    All queries at once (``lmeb.engine.fusion.fuse_segments``, ``lmeb.ordering.select_segments``): the only
    Python loops are over queries and parts; documents move through C-level iterators and numpy.
    """
    row = subset.corpus.row
    qids = list(subset.query_ids if query_ids is None else query_ids)
    rows, scores, sizes = [], [], []
    for run in runs:
        lists = [run.get(qid) or {} for qid in qids]
        n = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        total = int(n.sum())
        rows.append(np.fromiter(map(row.__getitem__, chain.from_iterable(lists)), dtype=np.int64, count=total))
        scores.append(np.fromiter(chain.from_iterable(d.values() for d in lists), dtype=np.float64, count=total))
        sizes.append(n)
    index = index or DocIndex.of(subset.corpus.ids)
    query, union, fused = fuse_segments(rows, scores, sizes, max(1, len(index)), method, weights, rrf_k)
    keep = select_segments(query, fused, index.ranks[union], k)
    names = index.names[union[keep]].tolist()
    values = fused[keep].tolist()
    bounds = np.cumsum(np.bincount(query[keep], minlength=len(qids))).tolist()
    out: Run = {}
    lo = 0
    for qid, hi in zip(qids, bounds, strict=True):
        out[qid] = dict(zip(names[lo:hi], values[lo:hi], strict=True))
        lo = hi
    return out
