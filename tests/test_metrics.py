"""lmeb.engine.metrics: hand-computed values for tiny rankings, and an independent numpy reference on random runs.

Conventions checked (mteb 2.26.24): pytrec_eval families rounded to 5 digits, mrr and R_cap not rounded;
relevance = qrels score > 0; ties ranked by doc id descending; R_cap leaves out queries with no
relevant document; queries missing from the run are not in the means but have per-query value 0.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from lmeb.engine.metrics import K_VALUES, MAIN_SCORE, evaluate

L2, L3, L4 = 1.0, math.log2(3), 2.0  # log2(rank + 1) for ranks 1, 2, 3


def test_metric_names_and_order_follow_mteb():
    ev = evaluate({"q": {"a": 1}}, {"q": {"a": 1.0}})
    families = ["ndcg_at", "map_at", "recall_at"]
    expected = [f"{f}_{k}" for f in families for k in K_VALUES] + ["accuracy"]
    expected += [f"{f}_{k}" for f in ["precision_at", "mrr_at", "hit_rate_at", "R_cap_at"] for k in K_VALUES]
    assert list(ev.scores) == expected
    assert ev.main_score == ev.scores[MAIN_SCORE] == ev.scores["ndcg_at_10"]
    assert set(ev.per_query) == set(expected) - {"accuracy"}


def test_perfect_ranking():
    ev = evaluate({"q": {"a": 1}}, {"q": {"a": 0.9, "b": 0.5, "c": 0.1}})
    s = ev.scores
    assert s["ndcg_at_1"] == s["ndcg_at_10"] == 1.0
    assert s["mrr_at_1"] == s["map_at_10"] == s["recall_at_1"] == s["accuracy"] == s["R_cap_at_1"] == 1.0
    assert s["precision_at_1"] == 1.0
    assert s["precision_at_3"] == round(1 / 3, 5)  # 1 relevant among 3
    assert s["precision_at_10"] == 0.1  # P@k divides by k even when fewer documents are ranked
    assert s["hit_rate_at_1"] == 1.0


def test_reversed_ranking():
    # relevant a, b ranked last: c (rank 1), b (rank 2), a (rank 3)
    ev = evaluate({"q": {"a": 1, "b": 1}}, {"q": {"a": 0.1, "b": 0.5, "c": 0.9}})
    s = ev.scores
    dcg = 0 / L2 + 1 / L3 + 1 / L4
    idcg = 1 / L2 + 1 / L3
    assert s["ndcg_at_3"] == round(dcg / idcg, 5)  # 1.13093 / 1.63093 = 0.69343
    assert s["ndcg_at_1"] == 0.0
    assert s["mrr_at_1"] == 0.0 and s["mrr_at_3"] == 0.5  # first relevant at rank 2
    assert s["map_at_3"] == round((1 / 2 + 2 / 3) / 2, 5)  # precision at each relevant rank / #relevant
    assert s["map_at_1"] == 0.0
    assert s["recall_at_1"] == 0.0 and s["recall_at_3"] == 1.0
    assert s["precision_at_3"] == round(2 / 3, 5)
    assert s["R_cap_at_1"] == 0.0  # 0 hits / min(2, 1)
    assert s["R_cap_at_3"] == 1.0  # 2 hits / min(2, 3)
    assert s["hit_rate_at_1"] == 0.0 and s["hit_rate_at_3"] == 1.0


def test_relevant_document_not_ranked():
    # z is relevant but not in the run (outside the candidates): it still counts as relevant
    ev = evaluate({"q": {"a": 1, "z": 1}}, {"q": {"a": 0.9, "b": 0.1}})
    s = ev.scores
    assert s["recall_at_10"] == 0.5 and s["recall_at_1000"] == 0.5
    assert s["ndcg_at_10"] == round((1 / L2) / (1 / L2 + 1 / L3), 5)  # 0.61315
    assert s["map_at_10"] == 0.5  # (1/1) / 2 relevant
    assert s["R_cap_at_1"] == 1.0  # 1 hit / min(2, 1)
    assert s["R_cap_at_10"] == 0.5  # 1 hit / min(2, 10)
    assert s["mrr_at_10"] == 1.0


def test_query_without_relevant_document():
    qrels = {"q1": {"a": 1}, "q2": {"a": 0}}  # q2 has a qrels line but nothing relevant
    ev = evaluate(qrels, {"q1": {"a": 1.0, "b": 0.0}, "q2": {"a": 1.0, "b": 0.0}})
    s = ev.scores
    assert s["ndcg_at_10"] == 0.5  # (1 + 0) / 2: q2 counts in the pytrec_eval means as 0
    assert s["mrr_at_10"] == 0.5 and s["recall_at_10"] == 0.5 and s["precision_at_1"] == 0.5
    assert s["R_cap_at_10"] == 1.0  # q2 left out: 1 / 1
    assert ev.per_query["ndcg_at_10"] == {"q1": 1.0, "q2": 0.0}
    assert ev.per_query["R_cap_at_10"] == {"q1": 1.0}  # undefined for q2
    columns = ev.columns(["q2", "q1", "unknown"])
    assert columns["R_cap_at_10"] == [None, 1.0, None] and columns["ndcg_at_10"] == [0.0, 1.0, None]
    only_irrelevant = evaluate({"q2": {"a": 0}}, {"q2": {"a": 1.0}})
    assert only_irrelevant.scores["R_cap_at_10"] == 0.0  # _average_optional of nothing
    assert only_irrelevant.scores["ndcg_at_10"] == 0.0


def test_qrels_score_zero_is_not_relevant():
    ev = evaluate({"q": {"a": 0, "b": 1}}, {"q": {"a": 0.9, "b": 0.8}})
    s = ev.scores
    assert s["precision_at_1"] == 0.0 and s["mrr_at_1"] == 0.0 and s["mrr_at_10"] == 0.5
    assert s["ndcg_at_10"] == round((1 / L3) / (1 / L2), 5)  # b at rank 2, ideal has b at rank 1
    assert s["R_cap_at_1"] == 0.0 and s["R_cap_at_3"] == 1.0  # 1 hit / min(1, 3)


def test_graded_relevance_is_linear_gain():
    # a (rel 1) at rank 1, b (rel 2) at rank 2; trec_eval ndcg uses the grade itself as gain
    ev = evaluate({"q": {"a": 1, "b": 2}}, {"q": {"a": 0.9, "b": 0.8, "c": 0.7}})
    dcg = 1 / L2 + 2 / L3  # 2.26186
    idcg = 2 / L2 + 1 / L3  # 2.63093
    assert ev.scores["ndcg_at_3"] == round(dcg / idcg, 5)  # 0.85972
    assert ev.scores["ndcg_at_1"] == round(1 / 2, 5)
    assert ev.scores["R_cap_at_1"] == 1.0 and ev.scores["mrr_at_1"] == 1.0


def test_ties_rank_by_doc_id_descending():
    qrels = {"q": {"a": 1}}
    for run in ({"a": 0.5, "b": 0.5}, {"b": 0.5, "a": 0.5}):  # insertion order must not matter
        ev = evaluate(qrels, {"q": run})
        assert ev.scores["mrr_at_1"] == 0.0 and ev.scores["mrr_at_3"] == 0.5  # "b" > "a" ranks first
        assert ev.scores["ndcg_at_1"] == 0.0 and ev.scores["R_cap_at_1"] == 0.0
    # string order, not numeric: "9" > "10", so "9" is first
    ev = evaluate({"q": {"10": 1}}, {"q": {"10": 1.0, "9": 1.0}})
    assert ev.scores["mrr_at_1"] == 0.0 and ev.scores["precision_at_1"] == 0.0
    assert ev.scores["R_cap_at_1"] == 0.0


def test_identical_results_run_to_run_and_order_independent():
    rng = random.Random(3)
    qrels = {f"q{i}": {f"d{j}": rng.randint(0, 2) for j in rng.sample(range(40), 4)} for i in range(30)}
    run = {q: {f"d{j}": rng.choice([0.0, 0.25, 0.5]) for j in range(40)} for q in qrels}
    shuffled = {}
    for q in reversed(list(run)):
        items = list(run[q].items())
        rng.shuffle(items)
        shuffled[q] = dict(items)
    first, second, third = evaluate(qrels, run), evaluate(qrels, run), evaluate(qrels, shuffled)
    assert first.scores == second.scores
    assert first.per_query == second.per_query
    for key, value in first.scores.items():
        # the means sum per-query floats in run order, so allow one rounding step between orders
        assert third.scores[key] == pytest.approx(value, abs=1e-5)
    assert {m: dict(sorted(v.items())) for m, v in first.per_query.items()} == {
        m: dict(sorted(v.items())) for m, v in third.per_query.items()
    }


def test_queries_missing_from_run_or_qrels():
    qrels = {"q1": {"a": 1}, "q2": {"a": 1}}
    ev = evaluate(qrels, {"q1": {"a": 1.0}, "extra": {"a": 1.0}})
    assert ev.scores["ndcg_at_10"] == 1.0 and ev.scores["mrr_at_10"] == 1.0  # q2 not in the means (as mteb)
    assert ev.per_query["ndcg_at_10"] == {"q1": 1.0, "q2": 0.0}  # but defined for paired tests
    assert ev.per_query["mrr_at_10"] == {"q1": 1.0, "q2": 0.0}
    assert ev.per_query["R_cap_at_10"] == {"q1": 1.0, "q2": 0.0}
    assert "extra" not in ev.per_query["ndcg_at_10"]
    no_rows = evaluate({**qrels, "q3": {}}, {"q1": {"a": 1.0}, "q3": {"a": 1.0}})  # no qrels row: dropped
    assert no_rows.scores == ev.scores and "q3" not in no_rows.per_query["ndcg_at_10"]
    empty = evaluate(qrels, {"q1": {"a": 1.0}, "q2": {}})  # an empty ranking is evaluated, as 0
    assert empty.scores["ndcg_at_10"] == 0.5 and empty.scores["mrr_at_10"] == 0.5


def _reference(qrels, run, ks):
    """Independent per-query metrics from the trec_eval definitions (numpy), ties by doc id descending."""
    out = {}
    for qid, docs in run.items():
        if qid not in qrels:
            continue
        ranked = [d for d, _ in sorted(docs.items(), key=lambda x: (x[1], x[0]), reverse=True)]
        rel = qrels[qid]
        gains = np.array([max(rel.get(d, 0), 0) for d in ranked], dtype=float)
        is_rel = gains > 0
        n_rel = sum(1 for v in rel.values() if v > 0)
        ideal = np.sort(np.array([v for v in rel.values() if v > 0], dtype=float))[::-1]
        res = {}
        for k in ks:
            disc = 1 / np.log2(np.arange(2, k + 2))
            dcg = float((gains[:k] * disc[: len(gains[:k])]).sum())
            idcg = float((ideal[:k] * disc[: len(ideal[:k])]).sum())
            hits = is_rel[:k]
            prec_at_hits = np.cumsum(hits) / np.arange(1, len(hits) + 1)
            res[f"ndcg_at_{k}"] = dcg / idcg if idcg else 0.0
            res[f"map_at_{k}"] = float(prec_at_hits[hits].sum()) / n_rel if n_rel else 0.0
            res[f"recall_at_{k}"] = hits.sum() / n_rel if n_rel else 0.0
            res[f"precision_at_{k}"] = hits.sum() / k
            res[f"hit_rate_at_{k}"] = float(hits.any())
            first = int(np.argmax(hits)) + 1 if hits.any() else 0
            res[f"mrr_at_{k}"] = 1 / first if first else 0.0
            res[f"R_cap_at_{k}"] = hits.sum() / min(n_rel, k) if n_rel else None
        out[qid] = res
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_independent_reference_on_random_runs(seed):
    rng = np.random.default_rng(seed)
    ids = [f"d{j}" for j in range(120)] + [str(j) for j in range(40)]
    qrels, run = {}, {}
    for i in range(300):
        qid = str(i)  # query ids overlap document ids, as in KnowMeBench: nothing is dropped
        picks = rng.choice(len(ids), rng.integers(1, 8), replace=False)
        qrels[qid] = {ids[j]: int(rng.integers(0, 4)) for j in picks}
        chosen = rng.choice(len(ids), rng.integers(0, len(ids)), replace=False)
        scores = np.round(rng.random(len(chosen)), 2)  # coarse scores: many ties
        run[qid] = dict(zip([ids[j] for j in chosen], scores.tolist(), strict=True))
    ks = (1, 3, 10, 50, 100)
    ev = evaluate(qrels, run, ks)
    ref = _reference(qrels, run, ks)
    for metric in ev.per_query:
        for qid, expected in ((q, r[metric]) for q, r in ref.items()):
            if expected is None:
                assert qid not in ev.per_query[metric]
            else:
                assert ev.per_query[metric][qid] == pytest.approx(expected, abs=1e-12), (metric, qid)
        values = [r[metric] for r in ref.values() if r[metric] is not None]
        assert ev.scores[metric] == pytest.approx(sum(values) / len(values), abs=6e-6), metric


def test_bad_k_values():
    with pytest.raises(ValueError):
        evaluate({"q": {"a": 1}}, {"q": {"a": 1.0}}, (0, 10))
