"""THE tie rule, the one order every ranking in lmeb follows: score descending, then document id descending.

That is how trec_eval/pytrec_eval order tied scores and how mteb's own metrics (mrr, recall_cap) sort since
mteb #5092; runs are dicts whose insertion order is this rank order. It lives below the engine and the
models so that both rank through one implementation: the engine's dense search, reranking and fusion
(``lmeb.engine.retrieval``, ``lmeb.engine.rerank``, ``lmeb.engine.fusion``) and a ``Searcher`` that scores
candidates itself (BM25, ``lmeb.models.bm25``) call ``top_k``/``search_scores`` here. Keeping the first ``k``
(default 1000 = max(k_values)) of this total order is lossless for every reported metric.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lmeb.errors import LmebError

Ranking = dict[str, float]  # one query's {doc id: score} in rank order
ScoreFn = Callable[[int, np.ndarray | None], np.ndarray]

DEFAULT_K = 1000  # = max(lmeb.engine.metrics.K_VALUES)


def id_rank(doc_ids: Sequence[str]) -> np.ndarray:
    """Position of each document id in ascending string order: the tie breaker (larger id first)."""
    order = sorted(range(len(doc_ids)), key=doc_ids.__getitem__)
    ranks = np.empty(len(doc_ids), dtype=np.int64)
    ranks[np.asarray(order, dtype=np.int64)] = np.arange(len(doc_ids), dtype=np.int64)
    return ranks


@dataclass(frozen=True)
class DocIndex:
    """A corpus's ids as ranking needs them: tie ranks (``id_rank``) and an object array (rows -> ids fast).

    Built once per search call and passed down, so a corpus is sorted once per subset.
    """

    ranks: np.ndarray
    names: np.ndarray

    @classmethod
    def of(cls, doc_ids: Sequence[str] | DocIndex) -> DocIndex:
        if isinstance(doc_ids, DocIndex):
            return doc_ids
        names = np.empty(len(doc_ids), dtype=object)
        names[:] = list(doc_ids)
        return cls(id_rank(doc_ids), names)

    def __len__(self) -> int:
        return self.names.shape[0]


def _select(scores: np.ndarray, ranks: np.ndarray, k: int) -> np.ndarray:
    """Indices into ``scores`` of its top ``k`` under (score desc, id desc), in that order."""
    n = scores.shape[0]
    if n > k:
        threshold = np.partition(scores, n - k)[n - k]  # the k-th largest score
        above = np.flatnonzero(scores > threshold)
        tied = np.flatnonzero(scores == threshold)
        need = k - above.shape[0]
        if need < tied.shape[0]:  # keep the tied documents with the largest ids
            tied = tied[np.argpartition(ranks[tied], tied.shape[0] - need)[tied.shape[0] - need:]]
        idx = np.concatenate([above, tied])
    else:
        idx = np.arange(n)
    # ascending by (score, id), reversed = descending by (score, id)
    return idx[np.lexsort((ranks[idx], scores[idx]))[::-1]]


def select_segments(query: np.ndarray, scores: np.ndarray, ranks: np.ndarray, k: int) -> np.ndarray:
    """``_select`` for many queries at once: indices of each query's top ``k`` under (score desc, id desc),
    grouped by query ascending (``query`` gives each score's query; ``ranks`` its document's ``id_rank``)."""
    if scores.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    distinct, score_rank = np.unique(scores, return_inverse=True)  # ascending score -> 0, 1, ...
    n_ids, n_scores = int(ranks.max()) + 1, distinct.shape[0]
    if (int(query.max()) + 1) * n_scores * n_ids < 2**62:  # one int64 key: (query, score desc, id desc)
        key = (query * n_scores + (n_scores - 1 - score_rank.ravel())) * n_ids + (n_ids - 1 - ranks)
        order = np.argsort(key, kind="stable")
    else:
        order = np.lexsort((-ranks, -scores, query))
    grouped = query[order]
    first = np.searchsorted(grouped, grouped, side="left")
    return order[np.arange(order.shape[0]) - first < k]


def top_k(scores: np.ndarray, rows: np.ndarray | None, doc_ids: Sequence[str] | DocIndex,
          k: int = DEFAULT_K) -> Ranking:
    """One query's top ``k`` documents in rank order (score desc, then doc id desc). Exact.

    ``scores[i]`` is the score of corpus row ``rows[i]``, or of row ``i`` when ``rows`` is None.
    Pass a ``DocIndex`` when ranking many queries over one corpus (the ids are sorted once).
    """
    scores = np.asarray(scores)
    if scores.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {scores.shape}")
    expected = len(doc_ids) if rows is None else rows.shape[0]
    if scores.shape[0] != expected:
        raise ValueError(f"got {scores.shape[0]} scores for {expected} documents")
    if k <= 0 or expected == 0:
        return {}
    if np.isnan(scores).any():
        raise LmebError(f"{int(np.isnan(scores).sum())} NaN similarity score(s): the model produced invalid scores")
    index = DocIndex.of(doc_ids)
    ranks = index.ranks if rows is None else index.ranks[rows]
    order = _select(scores, ranks, k)
    corpus_rows = order if rows is None else rows[order]
    return dict(zip(index.names[corpus_rows].tolist(), scores[order].tolist(), strict=True))


def ranking(run_for_query: dict[str, float]) -> list[tuple[str, float]]:
    """(doc id, score) pairs of any run in rank order: score descending, then doc id descending."""
    return sorted(run_for_query.items(), key=lambda item: (item[1], item[0]), reverse=True)


def search_scores(score_fn: ScoreFn, rows: Sequence[np.ndarray | None], doc_ids: Sequence[str] | DocIndex,
                  k: int = DEFAULT_K) -> list[Ranking]:
    """Generic search: ``score_fn(query_index, rows[query_index])`` -> scores over those rows (all docs when
    None); one ranking per query. BM25 and rerankers rank through here: one candidate logic, one tie rule.
    """
    index = DocIndex.of(doc_ids)
    out: list[Ranking] = []
    for i, cand in enumerate(rows):
        if cand is not None and cand.shape[0] == 0:
            out.append({})
            continue
        out.append(top_k(np.asarray(score_fn(i, cand), dtype=np.float64).ravel(), cand, index, k))
    return out
