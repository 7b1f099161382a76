"""Retrieval metrics with the exact names, definitions and rounding mteb 2.26.24 reports for LMEB tasks.

What mteb does (``_evaluators/retrieval_metrics.py``, ``abstasks/retrieval.py``, ``lmeb_retrieval.py``)
and this module reproduces:

* ndcg_at_k, map_at_k, recall_at_k, precision_at_k, hit_rate_at_k: pytrec_eval ``ndcg_cut``, ``map_cut``,
  ``recall``, ``P``, ``success`` at each k; the mean over the queries pytrec_eval evaluates (queries in
  both the run and the qrels; a query with an empty ranking counts, scoring 0), ``round(mean, 5)``.
  ``accuracy`` = recall_at_1 (mteb adds it for every retrieval task).
* mrr_at_k: mteb's own ``mrr``, not pytrec's ``recip_rank``: 1/rank of the first document with qrels
  score > 0 within the top k of the ranking (score desc, doc id desc), else 0; plain mean, NOT rounded.
* R_cap_at_k (LMEB task-specific score): hits in top k / min(#docs with qrels score > 0, k); a query
  without such a document is left out of the mean (mteb ``recall_cap`` + ``_average_optional``; 0.0 if
  no query has one); NOT rounded in mteb 2.26.24 (the official harness rounds it to 5 digits).
* Relevance: a qrels score > 0 is relevant, 0 (or negative) is not; graded scores are ndcg gains.
* Queries in the run but not in the qrels (or with no qrels row) are not evaluated: mteb only searches
  queries that have qrels rows (``_filter_queries_without_positives``).
  Queries in the qrels but absent from the run are not in the means either (pytrec_eval skips them and
  mteb's mrr iterates the run); their per-query values are defined as 0 so paired tests line up.
* main_score = ndcg_at_10. ``ignore_identical_ids`` and ``skip_first_result`` are False for LMEB: nothing
  is removed from the run (see lmeb.engine.retrieval).
* Skipped: mteb's nAUC_* abstention metrics (confidence = max/std/diff1 over ALL returned scores, so
  they depend on how many documents a harness returns and differ between mteb and the official harness;
  no LMEB table uses them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytrec_eval

from lmeb.engine.retrieval import Run

K_VALUES = (1, 3, 5, 10, 20, 25, 50, 100, 1000)
MAIN_SCORE = "ndcg_at_10"
ROUND = 5  # mteb rounds the pytrec_eval means (ndcg, map, recall, precision, hit rate) to 5 digits

Qrels = dict[str, dict[str, int]]

_PYTREC = (("ndcg_at", "ndcg_cut"), ("map_at", "map_cut"), ("recall_at", "recall"), ("precision_at", "P"),
           ("hit_rate_at", "success"))


@dataclass
class Evaluation:
    """Mean scores (mteb names and order) and per-query values (metric -> {query id: value}).

    per_query covers every query in the qrels; R_cap_at_k leaves out queries with no relevant document
    (their value is undefined and they are not in the mean).
    """

    scores: dict[str, float]
    per_query: dict[str, dict[str, float]]
    unranked: list[str] = field(default_factory=list)  # qrels queries absent from the run: 0 per query, not in means

    @property
    def main_score(self) -> float:
        return self.scores[MAIN_SCORE]

    def columns(self, query_ids: Sequence[str]) -> dict[str, list[float | None]]:
        """Per-query values as metric -> list aligned with ``query_ids`` (None where undefined: a query
        not in the qrels, or R_cap for a query without a relevant document) - the results sidecar shape."""
        return {metric: [values.get(q) for q in query_ids] for metric, values in self.per_query.items()}


def relevant_ranks(run_for_query: dict[str, float], relevant: set[str]) -> np.ndarray:
    """Sorted 1-based ranks (score desc, doc id desc) of the relevant documents present in the run."""
    hits = [d for d in relevant if d in run_for_query]
    if not hits:
        return np.empty(0, dtype=np.int64)
    scores = np.fromiter(run_for_query.values(), dtype=np.float64, count=len(run_for_query))
    ranks = []
    for doc in hits:
        s = run_for_query[doc]
        ahead = int(np.count_nonzero(scores > s))
        if np.count_nonzero(scores == s) > 1:  # tied scores: larger doc ids rank first
            ahead += sum(1 for d, v in run_for_query.items() if v == s and d > doc)
        ranks.append(ahead + 1)
    return np.sort(np.asarray(ranks, dtype=np.int64))


def evaluate(qrels: Qrels, run: Run, k_values: Sequence[int] = K_VALUES) -> Evaluation:
    """Score ``run`` against ``qrels`` exactly as mteb reports a retrieval task (see module docstring)."""
    k_values = tuple(int(k) for k in k_values)
    if not k_values or min(k_values) < 1:
        raise ValueError(f"k values must be positive integers, got {k_values}")
    ks = ",".join(str(k) for k in k_values)
    measures = {f"{name}.{ks}" for _, name in _PYTREC}
    qrels = {qid: rels for qid, rels in qrels.items() if rels}  # mteb drops queries without qrels rows
    evaluated = {qid: docs for qid, docs in run.items() if qid in qrels}
    all_ids = list(qrels)

    trec = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(evaluated) if evaluated else {}

    scores: dict[str, float] = {}
    per_query: dict[str, dict[str, float]] = {}
    for prefix, name in _PYTREC:
        for k in k_values:
            key, field = f"{prefix}_{k}", f"{name}_{k}"
            values = {qid: float(v[field]) for qid, v in trec.items()}
            scores[key] = round(sum(values.values()) / len(values), ROUND) if values else 0.0
            per_query[key] = {qid: values.get(qid, 0.0) for qid in all_ids}
        if prefix == "recall_at":  # mteb: accuracy = Recall@1 (smallest cut-off when 1 is not asked for)
            scores["accuracy"] = scores[f"recall_at_{1 if 1 in k_values else min(k_values)}"]

    mrr: dict[int, dict[str, float]] = {k: {} for k in k_values}
    rcap: dict[int, dict[str, float]] = {k: {} for k in k_values}
    for qid, docs in evaluated.items():
        relevant = {d for d, rel in qrels[qid].items() if rel > 0}
        ranks = relevant_ranks(docs, relevant)
        first = int(ranks[0]) if ranks.size else 0
        for k in k_values:
            mrr[k][qid] = 1.0 / first if 0 < first <= k else 0.0
            if relevant:
                rcap[k][qid] = int(np.count_nonzero(ranks <= k)) / min(len(relevant), k)

    # mteb's dict order: ndcg, map, recall, accuracy, precision, mrr, (nAUC), hit_rate, then task scores
    ordered = [f"ndcg_at_{k}" for k in k_values] + [f"map_at_{k}" for k in k_values]
    ordered += [f"recall_at_{k}" for k in k_values] + ["accuracy"] + [f"precision_at_{k}" for k in k_values]
    out = {key: scores[key] for key in ordered}
    for k in k_values:
        out[f"mrr_at_{k}"] = sum(mrr[k].values()) / len(mrr[k]) if mrr[k] else 0.0
        per_query[f"mrr_at_{k}"] = {qid: mrr[k].get(qid, 0.0) for qid in all_ids}
    for k in k_values:
        out[f"hit_rate_at_{k}"] = scores[f"hit_rate_at_{k}"]
    for k in k_values:
        out[f"R_cap_at_{k}"] = sum(rcap[k].values()) / len(rcap[k]) if rcap[k] else 0.0
        per_query[f"R_cap_at_{k}"] = {
            qid: rcap[k].get(qid, 0.0) for qid in all_ids if any(r > 0 for r in qrels[qid].values())
        }
    return Evaluation(scores=out, per_query=per_query, unranked=[qid for qid in all_ids if qid not in evaluated])


def column_means(query_ids: Sequence[str], columns: dict[str, list[float | None]],
                 unranked: Sequence[str] = ()) -> dict[str, float]:
    """The mean scores ``evaluate`` reports, recomputed from its per-query columns (``Evaluation.columns``).

    The same rules: ``unranked`` queries and undefined (None) values are left out, the pytrec_eval families
    are rounded to ``ROUND`` digits, mrr and R_cap are not, accuracy is the smallest recall cut-off. Sums
    may run in another order than ``evaluate``'s, so compare with a tolerance (``lmeb.results.consistency``).
    """
    skip = set(unranked)
    keep = [i for i, qid in enumerate(query_ids) if qid not in skip]
    out: dict[str, float] = {}
    for metric, values in columns.items():
        kept = [values[i] for i in keep if values[i] is not None]
        mean = sum(kept) / len(kept) if kept else 0.0
        out[metric] = round(mean, ROUND) if is_rounded(metric) else mean
    recalls = sorted(int(m.rsplit("_", 1)[1]) for m in out if m.startswith("recall_at_"))
    if recalls:
        out["accuracy"] = out[f"recall_at_{1 if 1 in recalls else recalls[0]}"]
    return out


def is_rounded(metric: str) -> bool:
    """Whether mteb rounds this metric's mean to ``ROUND`` digits (the pytrec_eval families and accuracy)."""
    return metric == "accuracy" or any(metric.startswith(f"{prefix}_") for prefix, _ in _PYTREC)
