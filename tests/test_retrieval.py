"""lmeb.engine.retrieval: candidate restriction, the tie rule, exact search vs full-rank-then-filter, TREC files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from lmeb.data.lines import Corpus
from lmeb.data.reader import SubsetData, load_task
from lmeb.engine.metrics import evaluate
from lmeb.engine.retrieval import candidate_rows, dense_search, write_trec
from lmeb.errors import LmebError
from lmeb.ordering import id_rank, ranking, search_scores, top_k
from lmeb.tasks.registry import get_task


def _subset(query_ids, doc_ids, scenes, qrels=None) -> SubsetData:
    """A tiny subset of a task whose scene is the first two underscore fields of the query id (LoCoMo)."""
    corpus = Corpus(Path("corpus.jsonl"), list(doc_ids), list(doc_ids), "0")
    return SubsetData(get_task("LoCoMo"), "single_hop", corpus, list(query_ids), list(query_ids),
                      qrels or {}, scenes)


@pytest.fixture
def tiny() -> SubsetData:
    docs = ["s_a_1", "s_a_2", "s_b_1", "s_b_2", "x"]
    scenes = {"s_a": ["s_a_1", "s_a_2", "ghost"], "s_b": ["s_b_2", "s_b_1", "s_b_2"]}
    return _subset(["s_a_q1", "s_b_q1", "s_a_q2", "s_c_q1"], docs, scenes)


def _reference_full_rank_then_filter(sims: np.ndarray, subset: SubsetData) -> dict[str, list[tuple[str, float]]]:
    """The official harness: rank the whole corpus (score desc, id desc), then keep each query's candidates."""
    ids = subset.corpus.ids
    out = {}
    for i, qid in enumerate(subset.query_ids):
        full = sorted(zip(ids, sims[i].tolist(), strict=True), key=lambda x: (x[1], x[0]), reverse=True)
        cands = subset.candidates(qid)
        keep = None if cands is None else set(cands)
        out[qid] = [(d, s) for d, s in full if keep is None or d in keep]
    return out


def test_candidate_rows(tiny):
    rows = candidate_rows(tiny)
    assert rows[0].tolist() == [0, 1]  # "ghost" is not in the corpus: dropped
    assert rows[1].tolist() == [3, 2]  # the repeated candidate counts once
    assert rows[2] is rows[0]  # queries of one scene share one array
    assert rows[3] is None  # scene s_c has no candidates line: whole corpus
    assert all(r.dtype == np.int64 for r in rows[:3])
    no_candidates = dataclasses.replace(tiny, scenes=None)  # dataset without candidates
    assert candidate_rows(no_candidates) == [None] * 4


def test_document_outside_candidates_never_ranked(tiny):
    q = np.eye(3, dtype=np.float32)[[0, 0, 0, 0]]
    d = np.array([[0.1, 1, 0], [0.2, 1, 0], [0.3, 1, 0], [0.4, 1, 0], [1, 0, 0]], dtype=np.float32)
    run = dense_search(q, d, tiny, similarity="dot")
    assert list(run["s_a_q1"]) == ["s_a_2", "s_a_1"]  # "x" scores highest but is not a candidate
    assert list(run["s_b_q1"]) == ["s_b_2", "s_b_1"]
    assert list(run["s_c_q1"]) == ["x", "s_b_2", "s_b_1", "s_a_2", "s_a_1"]  # whole corpus
    assert run["s_a_q1"]["s_a_2"] == pytest.approx(0.2)
    empty = dataclasses.replace(tiny, scenes={"s_a": ["ghost"], "s_b": []})
    run = dense_search(q, d, empty, similarity="dot")
    assert run["s_a_q1"] == {} and run["s_b_q1"] == {} and len(run["s_c_q1"]) == 5


def test_top_k_tie_rule():
    ids = ["a", "b", "c", "9", "10"]
    scores = np.array([0.5, 0.5, 0.7, 0.5, 0.5], dtype=np.float32)
    assert list(top_k(scores, None, ids, 10)) == ["c", "b", "a", "9", "10"]  # ties: id descending ("9" > "10")
    assert list(top_k(scores, None, ids, 3)) == ["c", "b", "a"]  # a tie cut at k keeps the largest ids
    rows = np.array([4, 3, 0], dtype=np.int64)
    assert list(top_k(scores[rows], rows, ids, 2)) == ["a", "9"]
    assert top_k(np.array([]), np.array([], dtype=np.int64), ids, 5) == {}
    run = {"a": 1.0, "b": 1.0, "c": 2.0}
    assert ranking(run) == [("c", 2.0), ("b", 1.0), ("a", 1.0)]
    with pytest.raises(LmebError, match="NaN"):
        top_k(np.array([np.nan, 1.0]), None, ["a", "b"], 1)


@pytest.mark.parametrize("k", [1, 5, 37, 200])
def test_top_k_matches_sorting(k):
    rng = np.random.default_rng(k)
    ids = [f"d{j}" for j in rng.permutation(300)]
    rows = rng.choice(300, 150, replace=False).astype(np.int64)
    scores = np.round(rng.random(150), 1).astype(np.float32)  # many ties
    got = list(top_k(scores, rows, ids, k).items())
    expected = ranking(dict(zip([ids[r] for r in rows], scores.tolist(), strict=True)))[:k]
    assert got == expected


def test_cosine_normalises_like_torch():
    sub = _subset(["q"], ["a", "b", "z"], None)
    q = np.array([[3.0, 4.0]], dtype=np.float32)
    d = np.array([[6.0, 8.0], [4.0, -3.0], [0.0, 0.0]], dtype=np.float32)  # zero vector: eps, no NaN
    run = dense_search(q, d, sub)
    assert list(run["q"]) == ["a", "z", "b"]
    assert run["q"]["a"] == pytest.approx(1.0, abs=1e-7) and run["q"]["b"] == pytest.approx(0.0, abs=1e-7)
    assert run["q"]["z"] == 0.0
    with pytest.raises(LmebError, match="similarity"):
        dense_search(q, d, sub, similarity="euclid")


@pytest.fixture(scope="module")
def locomo(real_data) -> SubsetData:
    """All LoCoMo queries (1976, 10 scenes, ~600 candidates each) against the shared corpus (5882 turns)."""
    subs = list(load_task(get_task("LoCoMo"), real_data))
    qrels = {q: r for s in subs for q, r in s.qrels.items()}
    return dataclasses.replace(subs[0], query_ids=[q for s in subs for q in s.query_ids],
                               query_texts=[t for s in subs for t in s.query_texts], qrels=qrels)


@pytest.mark.slow
def test_dense_search_equals_full_rank_then_filter_on_locomo(locomo):
    rng = np.random.default_rng(0)
    n_q, n_d = len(locomo.query_ids), len(locomo.corpus)
    # small integer vectors: float32 products are exact and scores tie often, so the order must match exactly
    q = rng.integers(-2, 3, (n_q, 8)).astype(np.float32)
    d = rng.integers(-2, 3, (n_d, 8)).astype(np.float32)
    run = dense_search(q, d, locomo, similarity="dot")
    assert list(run) == locomo.query_ids
    sample = sorted(rng.choice(n_q, 80, replace=False).tolist())
    sub = dataclasses.replace(locomo, query_ids=[locomo.query_ids[i] for i in sample])
    ref = _reference_full_rank_then_filter(q[sample] @ d.T, sub)
    for qid in sub.query_ids:
        assert list(run[qid].items()) == ref[qid][:1000]
        assert set(run[qid]) <= set(locomo.candidates(qid))
    ref_run = {qid: dict(ref[qid]) for qid in sub.query_ids}
    ours = {qid: run[qid] for qid in sub.query_ids}
    assert evaluate(sub.qrels, ours).scores == evaluate(sub.qrels, ref_run).scores
    # k smaller than the candidate lists: a prefix of the same order
    short = dense_search(q[sample], d, sub, similarity="dot", k=25)
    assert all(list(short[qid].items()) == ref[qid][:25] for qid in sub.query_ids)


def test_dense_search_cosine_scores_on_locomo(locomo):
    rng = np.random.default_rng(1)
    q = rng.standard_normal((len(locomo.query_ids), 384)).astype(np.float32) * 3
    d = rng.standard_normal((len(locomo.corpus), 384)).astype(np.float32)
    run = dense_search(q, d, locomo, k=50)
    q64 = q / np.linalg.norm(q.astype(np.float64), axis=1, keepdims=True)
    d64 = d / np.linalg.norm(d.astype(np.float64), axis=1, keepdims=True)
    row = locomo.corpus.row
    for i in range(0, len(locomo.query_ids), 97):
        qid = locomo.query_ids[i]
        got = run[qid]
        assert len(got) == 50 and list(got) == [doc for doc, _ in ranking(got)]
        expected = d64[[row[doc] for doc in got]] @ q64[i]
        assert np.allclose(list(got.values()), expected, atol=1e-6)
        cands = [row[c] for c in locomo.candidates(qid) if c in row]
        best = np.sort(d64[cands] @ q64[i])[::-1][:50]  # the same top 50 (up to float32 rounding)
        assert np.allclose(sorted(got.values(), reverse=True), best, atol=1e-6)


@pytest.mark.parametrize("k", [3, 1000])
def test_whole_corpus_search_in_chunks_is_exact(monkeypatch, k):
    import lmeb.engine.retrieval as retrieval

    monkeypatch.setattr(retrieval, "_DOC_CHUNK", 7)  # merge running top-k across many small chunks
    monkeypatch.setattr(retrieval, "_MAX_BLOCK", 2000)  # all 9 queries in one matmul (BLAS rounding depends on shape)
    rng = np.random.default_rng(k)
    ids = [str(j) for j in rng.permutation(60)]
    sub = _subset([f"s_{i}_q" for i in range(9)], ids, None)
    q = rng.integers(-1, 2, (9, 4)).astype(np.float32)
    d = rng.integers(-1, 2, (60, 4)).astype(np.float32)
    ref = _reference_full_rank_then_filter(q @ d.T, sub)
    run = retrieval.dense_search(q, d, sub, similarity="dot", k=k)
    assert all(list(run[qid].items()) == ref[qid][:k] for qid in sub.query_ids)
    cos = retrieval.dense_search(q, d, sub, k=k)  # chunked normalisation: same as one full pass
    monkeypatch.setattr(retrieval, "_DOC_CHUNK", 1 << 16)
    assert retrieval.dense_search(q, d, sub, k=k) == cos


def test_search_scores_shares_candidates_and_ties(tiny):
    seen = []

    def score_fn(i, rows):
        seen.append(None if rows is None else rows.tolist())
        n = 5 if rows is None else len(rows)
        return np.zeros(n)  # all tied: rank by doc id descending

    run = dict(zip(tiny.query_ids, search_scores(score_fn, candidate_rows(tiny), tiny.corpus.ids, k=3), strict=True))
    assert seen == [[0, 1], [3, 2], [0, 1], None]
    assert list(run["s_a_q1"]) == ["s_a_2", "s_a_1"]
    assert list(run["s_c_q1"]) == ["x", "s_b_2", "s_b_1"]


def test_write_trec(tmp_path, tiny):
    run = {"q1": {"a": 0.5, "c": 0.25, "b": 0.5}, "q2": {}}
    path = tmp_path / "out" / "run.trec"
    write_trec(run, path, "lmeb")
    assert path.read_text() == "q1 Q0 b 1 0.5 lmeb\nq1 Q0 a 2 0.5 lmeb\nq1 Q0 c 3 0.25 lmeb\n"
    assert [p.name for p in path.parent.iterdir()] == ["run.trec"]  # no temporary left behind
    with pytest.raises(LmebError, match="whitespace"):
        write_trec({"q 1": {"a": 1.0}}, tmp_path / "bad.trec", "lmeb")
    with pytest.raises(LmebError, match="tag"):
        write_trec(run, tmp_path / "bad.trec", "two words")


def test_dense_search_without_queries_or_documents():
    """An empty side comes from the embedding store as (0, 0): an empty run, not a dimension error."""
    no_queries = _subset([], ["s_a_1", "s_a_2"], None)
    assert dense_search(np.zeros((0, 0), np.float32), np.ones((2, 3), np.float32), no_queries) == {}
    no_docs = _subset(["s_a_q1", "s_b_q1"], [], {"s_a": ["ghost"]})
    assert dense_search(np.ones((2, 3), np.float32), np.zeros((0, 0), np.float32), no_docs) == \
        {"s_a_q1": {}, "s_b_q1": {}}


@pytest.mark.parametrize("scenes", [{"s_a": [f"d{j}" for j in range(0, 4000, 2)]}, None])
def test_scores_computed_one_bounded_block_at_a_time(monkeypatch, scenes):
    """Many queries sharing one large candidate set (or the whole corpus) never get a dense queries x
    documents matrix: at most ``_MAX_BLOCK`` similarity cells exist at once (traced numpy allocations)."""
    import tracemalloc

    import lmeb.engine.retrieval as retrieval

    monkeypatch.setattr(retrieval, "_MAX_BLOCK", 1 << 14)  # 64 KiB of float32 per block
    rng = np.random.default_rng(0)
    n_q, n_d, dim = 1500, 4000, 8
    sub = _subset([f"s_a_q{i}" for i in range(n_q)], [f"d{j}" for j in range(n_d)], scenes)
    q = rng.standard_normal((n_q, dim)).astype(np.float32)
    d = rng.standard_normal((n_d, dim)).astype(np.float32)
    rows = candidate_rows(sub)
    id_rank(sub.corpus.ids)  # the per-corpus tie-break index is built once per run, not per block
    tracemalloc.start()
    try:
        run = retrieval.dense_search(q, d, sub, k=5, rows=rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full_matrix = n_q * (n_d // 2 if scenes else n_d) * 4  # 12-24 MB
    assert peak < full_matrix / 4, peak  # blocks, normalised copies and the run itself
    first = sub.query_ids[0]
    expected = top_k(q[0] / np.linalg.norm(q[0]) @ (d / np.linalg.norm(d, axis=1)[:, None]).T
                     if scenes is None else
                     (d[rows[0]] / np.linalg.norm(d[rows[0]], axis=1)[:, None]) @ (q[0] / np.linalg.norm(q[0])),
                     None if scenes is None else rows[0], sub.corpus.ids, 5)
    assert list(run[first]) == list(expected)
