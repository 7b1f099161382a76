"""Exact streaming top-k over a whole corpus: blocks of documents against all queries, never a
queries x corpus matrix.

Used when queries are ranked among the whole corpus (``--scope corpus``, a dataset without candidates).
Per block of documents and batch of queries: one float32 matrix product (the same shapes as before, so
the same float32 values), then only the scores that can still enter a query's top k are looked at:

* each query keeps its top k as int64 keys ``(sortable score bits << 32) | id rank``: one integer order
  that *is* the tie rule (score descending, then document id descending, ``lmeb.engine.retrieval``), so
  selecting the k largest keys is exact, ties at the cut included;
* a block's score enters only if it is >= the query's current k-th best score (or, while a query holds
  fewer than k, >= the block's own k-th largest score); after the first blocks that is a small
  fraction, so the cost is the matrix product plus a compare per score.

Memory: the query matrix, one block's scores, the kept keys (queries x k int64) and the candidates.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from lmeb.errors import LmebError

_MIN = np.iinfo(np.int64).min
_LOW = np.int64(0xFFFFFFFF)
_THREADS = max(1, min(32, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))
_MIN_CELLS_PER_THREAD = 1 << 20  # below this a thread costs more than it saves


def score_keys(scores: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """int64 keys ordered exactly as (float32 score, id rank): larger key = better."""
    bits = (np.asarray(scores, dtype=np.float32) + np.float32(0.0)).view(np.int32).astype(np.int64)  # -0.0 -> 0.0
    sortable = np.where(bits >= 0, bits, bits ^ 0x7FFFFFFF)
    return (sortable << 32) | ranks.astype(np.int64)


def key_scores(keys: np.ndarray) -> np.ndarray:
    """The float32 scores inside ``score_keys`` keys."""
    sortable = (keys >> 32).astype(np.int32)
    return np.where(sortable >= 0, sortable, sortable ^ 0x7FFFFFFF).astype(np.int32).view(np.float32)


def stream_top_k(q: np.ndarray, d: np.ndarray, ranks: np.ndarray, k: int,
                 prepare: Callable[[np.ndarray], np.ndarray] | None = None, doc_block: int = 1 << 16,
                 max_cells: int = 1 << 25, check: Callable[[np.ndarray], None] | None = None,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores): per query its top ``min(k, n_docs)`` corpus rows and float32 scores in rank order.

    ``q``: queries (already normalised for cosine); ``d``: documents, each block passed through ``prepare``
    (cosine: ``lmeb.engine.retrieval``'s normalisation, so a large corpus is never copied whole);
    ``ranks``: each document's id rank (``lmeb.ordering.id_rank``, a permutation of 0..n-1);
    ``check``: called on a block of scores that could hold an overflow (finite vectors whose norms multiply
    past float32's range, e.g. x1e30 with dot similarity); blocks the norms rule out are never scanned.
    """
    n, nq = d.shape[0], q.shape[0]
    k = min(k, n)
    best = np.full((nq, k), _MIN, dtype=np.int64)
    _check_finite(q, "query")
    q_norm = float(np.linalg.norm(q.astype(np.float64), axis=1).max()) if nq else 0.0
    with ThreadPoolExecutor(_THREADS) as pool:
        _stream(pool, q, d, ranks, best, k, prepare, doc_block, max_cells, check, q_norm)
    best = -np.sort(-best, axis=1) if k else best  # descending keys = rank order
    order = np.argsort(ranks, kind="stable")  # id rank -> row
    return order[(best & _LOW)], key_scores(best)


def _stream(pool: ThreadPoolExecutor, q: np.ndarray, d: np.ndarray, ranks: np.ndarray, best: np.ndarray, k: int,
            prepare: Callable[[np.ndarray], np.ndarray] | None, doc_block: int, max_cells: int,
            check: Callable[[np.ndarray], None] | None, q_norm: float) -> None:
    n, nq = d.shape[0], q.shape[0]
    for lo in range(0, n, doc_block):
        chunk = d[lo:lo + doc_block]
        if prepare is not None:
            chunk = prepare(chunk)
        _check_finite(chunk, "document")
        block_ranks = np.asarray(ranks[lo:lo + chunk.shape[0]], dtype=np.int64)
        step = max(1, max_cells // chunk.shape[0])
        d_norm = float(np.linalg.norm(chunk.astype(np.float64), axis=1).max()) if chunk.shape[0] else 0.0
        may_overflow = check is not None and q_norm * d_norm >= _F32_MAX  # Cauchy-Schwarz bounds every score
        for start in range(0, nq, step):
            sims = q[start:start + step] @ chunk.T
            if may_overflow:
                check(sims)
            _merge_rows(pool, best[start:start + step], sims, block_ranks, k)


_F32_MAX = float(np.finfo(np.float32).max)


def _check_finite(x: np.ndarray, kind: str) -> None:
    """Finite vectors give no NaN score (checking them is far cheaper than checking every score)."""
    if not np.isfinite(x).all():
        raise LmebError(f"NaN or infinite {kind} embedding values: the model produced invalid embeddings")


def _merge_rows(pool: ThreadPoolExecutor, best: np.ndarray, sims: np.ndarray, block_ranks: np.ndarray,
                k: int) -> None:
    """``_merge`` over row ranges on the pool's threads (numpy releases the GIL; the rows are independent),
    so the compare-and-select passes use every core as the matrix product does."""
    parts = min(_THREADS, max(1, sims.size // _MIN_CELLS_PER_THREAD), sims.shape[0])
    if parts <= 1:
        _merge(best, sims, block_ranks, k)
        return
    bounds = np.linspace(0, sims.shape[0], parts + 1).astype(int)
    for future in [pool.submit(_merge, best[a:b], sims[a:b], block_ranks, k)
                   for a, b in itertools.pairwise(bounds)]:
        future.result()


def _merge(best: np.ndarray, sims: np.ndarray, block_ranks: np.ndarray, k: int) -> None:
    """Merge one block's scores into the kept keys ``best`` (queries x k, in place)."""
    if k == 0:
        return
    kth = best.min(axis=1)  # the k-th best key kept (_MIN while a query holds fewer than k)
    threshold = np.where(kth == _MIN, -np.inf, key_scores(kth).astype(np.float64)).astype(np.float32)
    filling = np.flatnonzero(kth == _MIN)
    if filling.size and sims.shape[1] > k:  # not full yet: only scores >= the block's own k-th largest can enter
        part = sims if filling.size == sims.shape[0] else sims[filling]
        threshold[filling] = np.partition(part, sims.shape[1] - k, axis=1)[:, sims.shape[1] - k]
    flat = np.flatnonzero(sims >= threshold[:, None])
    qi, dj = np.divmod(flat, sims.shape[1])
    if not qi.size:
        return
    keys = score_keys(sims[qi, dj], block_ranks[dj])
    keep = keys > kth[qi]
    qi, keys = qi[keep], keys[keep]
    if not qi.size:
        return
    affected, inverse, counts = np.unique(qi, return_inverse=True, return_counts=True)
    width = k + int(counts.max())
    merged = np.full((affected.size, width), _MIN, dtype=np.int64)
    merged[:, :k] = best[affected]
    position = np.arange(qi.size) - np.repeat(np.cumsum(counts) - counts, counts)
    merged[inverse, k + position] = keys
    best[affected] = np.partition(merged, width - k, axis=1)[:, width - k:]
