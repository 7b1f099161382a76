"""Fusion of several rankings of one query into one: the maths of ``lmeb.hybrid``, over plain arrays.

Each part gives, per query, its top-``depth`` list in rank order: the corpus rows and their scores.
``fuse`` returns the union of those rows and one fused score per row; ranking them is left to
``lmeb.retrieval.top_k`` (THE tie rule: score descending, then document id descending).

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

import numpy as np

from lmeb.errors import LmebError

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
        raise LmebError(f"got {len(out)} fusion weight(s) for {parts} parts")
    if not all(np.isfinite(out)) or min(out) < 0 or sum(out) <= 0:
        raise LmebError(f"fusion weights must be finite, non-negative and not all 0, got {out}")
    return out


def normalise(scores: np.ndarray, method: str) -> np.ndarray:
    """One part's list of scores (float64) normalised by ``method`` (``minmax``, ``zscore``, ``dbsf``)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.shape[0] == 0:
        return s
    if method == "minmax":
        lo, hi = s.min(), s.max()
        return (s - lo) / (hi - lo) if hi - lo > _FLAT else np.zeros_like(s)
    mu, sigma = s.mean(), s.std()
    if method == "zscore":
        return (s - mu) / sigma if sigma > _FLAT else np.zeros_like(s)
    if method == "dbsf":
        if sigma < _FLAT:
            return np.full_like(s, 0.5)
        return np.clip((s - (mu - 3 * sigma)) / (6 * sigma), 0.0, 1.0)
    raise LmebError(f"no normalisation for fusion {method!r}")


def fuse(rows: Sequence[np.ndarray], scores: Sequence[np.ndarray], method: str, weights: Sequence[float],
         rrf_k: int = DEFAULT_RRF_K) -> tuple[np.ndarray, np.ndarray]:
    """(union of rows, fused score per row) of one query's part lists (each in the part's rank order).

    ``rows[i]`` are int64 corpus rows of part ``i``'s list, ``scores[i]`` their scores (a part's
    duplicate-free top list, as every lmeb run is). The sum runs over parts in order, in float64.
    """
    lists = [np.asarray(r, dtype=np.int64) for r in rows]
    if not lists or sum(r.shape[0] for r in lists) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    union, where = np.unique(np.concatenate(lists), return_inverse=True)
    fused = np.zeros(union.shape[0], dtype=np.float64)
    start = 0
    for part_rows, part_scores, weight in zip(lists, scores, weights, strict=True):
        n = part_rows.shape[0]
        slot = where[start:start + n]
        start += n
        if method == "rrf":
            contrib = np.zeros(union.shape[0], dtype=np.float64)
            contrib[slot] = 1.0 / (rrf_k + np.arange(1, n + 1, dtype=np.float64))
        else:
            normal = normalise(part_scores, method)
            contrib = np.full(union.shape[0], normal.min() if n else 0.0, dtype=np.float64)
            contrib[slot] = normal
        fused += weight * contrib
    return union, fused
