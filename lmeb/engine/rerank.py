"""Retrieve-then-rerank over plain runs, and a reranker used as the model itself.

A ``Run`` is ``{query id: {doc id: score}}`` whose insertion order is the rank order; every ranking
follows THE tie rule (score descending, then doc id descending; ``lmeb.ordering.ranking``).

Which instruction a reranker gets (the caller passes it; ``lmeb run`` does this):

* w/o inst. (``wo_inst``): ``instruction=None``. KaLM-Reranker-V1 then fills its prompt's
  ``<Instruct>`` slot with its default, "Given a query, retrieve documents that answer the query."
  (exactly what mteb gives it on LMEB, whose tasks carry no instruction column).
* w/ inst. (``w_inst``): the subset's own task instruction (``subset.instruction``), which is how the
  KaLM-Reranker-V1 paper runs LMEB. ``lmeb.tasks.settings.setting_instruction`` gives the rule in one place.

Cross-encoders ignore the instruction unless built with an ``instruction_template``
(``lmeb.models.cross_encoder``). The instruction never reaches the first-stage run: that one follows
the same setting through its own encoder.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from lmeb.data.reader import SubsetData
from lmeb.engine import retrieval
from lmeb.engine.retrieval import Rows, Run, candidate_rows
from lmeb.errors import LmebError
from lmeb.models.base import Reranker
from lmeb.ordering import DEFAULT_K, DocIndex, ranking, top_k

MAX_PAIRS_PER_CALL = 1 << 20  # pairs handed to the reranker at once (the KaLM passage cache spans calls)
HUGE_PAIRS = 2_000_000  # rerank_candidates warns above this many pairs in one subset


def _doc_text(subset: SubsetData, doc_id: str) -> str:
    row = subset.corpus.row.get(doc_id)
    if row is None:
        raise LmebError(f"{subset.task.name}/{subset.subset}: the first-stage run names document {doc_id!r}, "
                        f"which is not in the corpus {subset.corpus.path}")
    return subset.corpus.texts[row]


def _score_in_chunks(reranker: Reranker, pairs: list[tuple[str, str]], instruction: str | None) -> np.ndarray:
    """``reranker.score`` over ``pairs`` in calls of at most ``MAX_PAIRS_PER_CALL``; checks the output."""
    out = np.empty(len(pairs), dtype=np.float64)
    for start in range(0, len(pairs), MAX_PAIRS_PER_CALL):
        chunk = pairs[start:start + MAX_PAIRS_PER_CALL]
        scores = np.asarray(reranker.score(chunk, instruction), dtype=np.float64).reshape(-1)
        name = getattr(reranker, "name", type(reranker).__name__)
        if scores.shape[0] != len(chunk):
            raise LmebError(f"reranker {name!r} returned {scores.shape[0]} scores for {len(chunk)} pairs")
        if not np.isfinite(scores).all():
            raise LmebError(f"reranker {name!r} returned non-finite scores for {int((~np.isfinite(scores)).sum())} "
                            "pair(s)")
        out[start:start + len(chunk)] = scores
    return out


def rerank(subset: SubsetData, first_stage: Run, reranker: Reranker, top_k: int = 100,
           instruction: str | None = None) -> Run:
    """Rerank each query's first-stage top ``top_k`` and keep every lower rank exactly as it was.

    All (query, passage) pairs of the subset go to the reranker together (it batches them and, for
    KaLM, encodes each passage once). In the result a query's reranked block comes first, in the
    reranker's order under the tie rule, followed by the untouched first-stage ranks > ``top_k`` with
    their scores. The block's scores are therefore not the reranker's raw scores but
    ``ceil(max score below k) + d``, where ``d`` counts the distinct reranker scores from the bottom
    (equal reranker scores stay equal, so ties still fall to the doc id): any metric computed on the
    result sees exactly the reranked order. Queries absent from ``first_stage`` get an empty ranking.
    """
    if top_k < 1:
        raise LmebError(f"rerank top k must be at least 1, got {top_k}")
    texts = dict(zip(subset.query_ids, subset.query_texts, strict=True))
    unknown = [qid for qid in first_stage if qid not in texts]
    if unknown:
        raise LmebError(f"{subset.task.name}/{subset.subset}: the first-stage run has {len(unknown)} query id(s) "
                        f"not in the subset, e.g. {unknown[0]!r}")
    heads: dict[str, list[str]] = {}
    tails: dict[str, list[tuple[str, float]]] = {}
    pairs: list[tuple[str, str]] = []
    for qid in subset.query_ids:
        ranked = ranking(first_stage.get(qid, {}))
        heads[qid] = [doc for doc, _ in ranked[:top_k]]
        tails[qid] = ranked[top_k:]
        pairs.extend((texts[qid], _doc_text(subset, doc)) for doc in heads[qid])
    scores = _score_in_chunks(reranker, pairs, instruction) if pairs else np.zeros(0)

    run: Run = {}
    at = 0
    for qid in subset.query_ids:
        head, tail = heads[qid], tails[qid]
        block = dict(zip(head, scores[at:at + len(head)].tolist(), strict=True))
        at += len(head)
        base = math.ceil(max(score for _, score in tail)) if tail else 0.0
        distinct = sorted(set(block.values()))  # ascending: the lowest reranker score gets base + 1
        level = {value: float(base + i + 1) for i, value in enumerate(distinct)}
        out = {doc: level[score] for doc, score in ranking(block)}
        out.update(tail)
        run[qid] = out
    return run


def rerank_candidates(subset: SubsetData, reranker: Reranker, instruction: str | None = None,
                      k: int = DEFAULT_K, rows: Rows | None = None) -> Run:
    """The reranker as the model: score every candidate of every query, keep the top ``k`` (tie rule).

    Candidates follow ``SubsetData.candidates`` (the query's scene; the whole corpus where there are
    none). Queries of one scene are scored together so their shared passages can be reused; the
    scores in the run are the reranker's own.
    """
    rows = candidate_rows(subset) if rows is None else rows
    n_docs = len(subset.corpus)
    total = sum(n_docs if cand is None else cand.shape[0] for cand in rows)
    if total > HUGE_PAIRS:
        warnings.warn(f"{subset.task.name}/{subset.subset}: the reranker scores {total:,} (query, document) pairs "
                      f"({len(rows)} queries over up to {n_docs:,} documents); consider a first-stage retriever "
                      "with --reranker", stacklevel=2)
    texts, ids = subset.corpus.texts, DocIndex.of(subset.corpus.ids)
    results: list[dict[str, float]] = [{} for _ in rows]
    for cand, members in retrieval.group_queries(rows):  # one group per scene, as dense_search
        docs = np.arange(n_docs) if cand is None else cand
        if docs.shape[0] == 0:
            continue
        doc_texts = [texts[r] for r in docs.tolist()]
        per_call = max(1, MAX_PAIRS_PER_CALL // docs.shape[0])
        for start in range(0, len(members), per_call):
            batch = members[start:start + per_call]
            pairs = [(subset.query_texts[qi], text) for qi in batch for text in doc_texts]
            scores = _score_in_chunks(reranker, pairs, instruction).reshape(len(batch), docs.shape[0])
            for j, qi in enumerate(batch):
                results[qi] = top_k(scores[j], cand, ids, k)
    return dict(zip(subset.query_ids, results, strict=True))
