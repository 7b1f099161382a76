"""BM25: scores identical to mteb's bm25s path (index the whole corpus, rank, filter to candidates),
candidates respected, a shared corpus indexed once, out-of-vocabulary queries, instructions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

bm25s = pytest.importorskip("bm25s")
Stemmer = pytest.importorskip("Stemmer")

from lmeb.data.lines import Corpus  # noqa: E402
from lmeb.data.reader import SubsetData, load_task  # noqa: E402
from lmeb.engine.retrieval import search_subset  # noqa: E402
from lmeb.errors import LmebError  # noqa: E402
from lmeb.models.bm25 import BM25Searcher  # noqa: E402
from lmeb.models.registry import load_model  # noqa: E402
from lmeb.tasks.registry import get_task  # noqa: E402


def reference_run(subset: SubsetData) -> dict[str, dict[str, float]]:
    """mteb 2.26.24's BM25Search for an English task, retrieving the whole corpus, then the official
    candidate filter: title/text joined by a newline, bm25s English stop words + PyStemmer english."""
    stopwords = list(frozenset(bm25s.tokenization.STOPWORDS_EN))
    stemmer = Stemmer.Stemmer("english")
    corpus = subset.corpus
    retriever = bm25s.BM25(k1=1.5, b=0.75, delta=0.5, method="lucene")
    texts = ["\n".join(["", text]) for text in corpus.texts]
    tokens = bm25s.tokenize(texts, stopwords=stopwords, stemmer=stemmer, show_progress=False)
    retriever.index(tokens, show_progress=False)
    queries = bm25s.tokenize(subset.query_texts, stopwords=stopwords, stemmer=stemmer, show_progress=False)
    docs, scores = retriever.retrieve(queries, k=len(corpus), show_progress=False)
    run = {}
    for i, qid in enumerate(subset.query_ids):
        allowed = subset.candidates(qid)
        allowed = None if allowed is None else set(allowed)
        run[qid] = {
            corpus.ids[d]: float(s)
            for d, s in zip(docs[i].tolist(), scores[i].tolist(), strict=True)
            if allowed is None or corpus.ids[d] in allowed
        }
    return run


@pytest.fixture(scope="module")
def locomo(real_data: Path) -> list[SubsetData]:
    return list(load_task(get_task("LoCoMo"), real_data))


@pytest.mark.slow
def test_locomo_equals_reference_and_respects_candidates(locomo):
    searcher = BM25Searcher()
    for subset in locomo:
        run = search_subset(searcher, subset, k=10_000)
        assert list(run) == subset.query_ids
        for qid, docs in run.items():
            cands = subset.candidates(qid)
            assert cands is not None and set(docs) == set(cands) & set(subset.corpus.ids)
        if subset.subset in ("multi_hop", "open_domain"):  # the exact check on two subsets keeps it fast
            assert run == reference_run(subset)
    assert searcher.index_count == 1  # one corpus shared by the five subsets: indexed once


@pytest.mark.slow
def test_topk_cut_and_rank_order(locomo):
    subset = locomo[3]
    run = search_subset(BM25Searcher(), subset, k=5)
    full = reference_run(subset)
    for qid, docs in run.items():
        ranked = sorted(full[qid].items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:5]
        assert list(docs.items()) == ranked  # insertion order = rank: score desc, then doc id desc


def _tiny(texts: list[str], queries: list[str], scenes: dict[str, list[str]] | None = None) -> SubsetData:
    """A hand-made subset; with ``scenes``, of a task whose scene id is the query id (MLDR)."""
    ids = [f"d{i}" for i in range(len(texts))]
    corpus = Corpus(Path("tiny/corpus.jsonl"), ids, texts, sha256=str(hash(tuple(texts))))
    qids = [f"q{i}" for i in range(len(queries))]
    task = get_task("MLDR")
    assert task.scene_of("q0") == "q0"
    return SubsetData(task, task.subset_names[0], corpus, qids, list(queries), {}, scenes)


def test_out_of_vocabulary_and_stopword_queries_score_zero():
    texts = ["apples grow on trees", "the river runs", "a violin concert"]
    subset = _tiny(texts, ["zebra quokka", "the of and", "apple"])
    run = search_subset(BM25Searcher(), subset)
    assert run["q0"] == run["q1"] == {"d2": 0.0, "d1": 0.0, "d0": 0.0}  # all tied: doc id descending
    assert next(iter(run["q2"])) == "d0" and run["q2"]["d0"] > 0  # "apple" matches "apples" (stemmed)
    assert run == reference_run(subset)


def test_candidates_outside_scene_never_ranked_and_missing_scene_keeps_corpus():
    texts = ["red apple pie", "green apple tart", "apple orchard", "banana bread"]
    subset = _tiny(texts, ["apple"] * 2, scenes={"q0": ["d1", "d3", "missing"]})
    run = search_subset(BM25Searcher(), subset)
    assert set(run["q0"]) == {"d1", "d3"}
    assert set(run["q1"]) == {"d0", "d1", "d2", "d3"}  # no candidates line: the whole corpus
    assert run == reference_run(subset)


def test_corpus_cache_keeps_latest_only():
    a = _tiny(["one apple", "two pears"], ["apple"])
    b = _tiny(["three plums", "four figs"], ["plum"])
    searcher = BM25Searcher()
    search_subset(searcher, a)
    search_subset(searcher, a)
    assert searcher.index_count == 1
    search_subset(searcher, b)
    search_subset(searcher, a)
    assert searcher.index_count == 3


def test_shared_corpus_list_is_not_hashed_again(monkeypatch):
    """A corpus shared by several subsets comes back as the same list: recognised without hashing all of
    it per subset; the same texts in a new list, or an edited list, are still told apart by content."""
    import lmeb.models.bm25 as bm25_module

    hashed = []
    real = bm25_module.texts_digest
    monkeypatch.setattr(bm25_module, "texts_digest", lambda texts: hashed.append(len(texts)) or real(texts))
    texts = ["one apple", "two pears", "three plums"]
    searcher = BM25Searcher()
    first = searcher.index(texts)
    assert searcher.index(texts) is first and hashed == [3]
    assert searcher.index(list(texts)) is first and searcher.index_count == 1
    texts[1] = "two figs"
    assert searcher.index(texts) is not first and searcher.index_count == 2


def test_instruction_ignored_like_mteb_unless_asked():
    subset = _tiny(["apple pie recipe", "banana bread recipe"], ["recipe"])
    plain = search_subset(BM25Searcher(), subset)
    assert search_subset(BM25Searcher(), subset, instruction="banana") == plain
    with_inst = search_subset(BM25Searcher(use_instruction=True), subset, instruction="banana")
    assert next(iter(with_inst["q0"])) == "d1" and with_inst != plain


def test_load_model_bm25_and_config():
    model = load_model("bm25", k1=1.2)
    assert isinstance(model, BM25Searcher)
    cfg = model.config()
    got = (cfg["k1"], cfg["b"], cfg["method"], cfg["stemmer"], cfg["stopwords"])
    assert got == (1.2, 0.75, "lucene", "english", "en")
    assert np.isclose(BM25Searcher().k1, 1.5)
    with pytest.raises(LmebError, match="option batch_size, device does not apply to bm25"):
        load_model("bm25", device="cpu", batch_size=64)  # one rule: never silently ignored


@pytest.mark.parametrize("method", ["lucene", "bm25+"])
def test_candidate_rows_scored_alone_equal_whole_corpus_scores(method):
    """Scoring a query's candidate rows only (linear in the candidates, not the corpus) gives bit-identical
    float32 scores to bm25s scoring every document, including repeated and unknown query tokens."""
    rng = np.random.default_rng(7)
    words = ["apple", "river", "violin", "orchard", "bread", "garden", "letter", "window", "cloud", "stone"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 25)))) for _ in range(400)] + [""]
    searcher = BM25Searcher(method=method)
    retriever = searcher.index(texts)
    queries = ["apple river river window", "violin", "zebra quokka", "cloud stone bread garden letter apple", ""]
    for tokens in searcher.query_tokens(queries):
        full = searcher.scores(retriever, tokens)
        assert full.shape == (len(texts),)
        for rows in (rng.permutation(len(texts))[:37], np.arange(len(texts)), np.empty(0, dtype=np.int64)):
            part = searcher.scores(retriever, tokens, rows)
            assert part.dtype == full.dtype and np.array_equal(part, full[rows])


@pytest.mark.parametrize("method", ["lucene", "robertson", "atire", "bm25l", "bm25+"])
def test_chunked_index_equals_bm25s_index(method):
    """lmeb builds the index a chunk of documents at a time (bounded memory); every token's posting list
    (documents and float32 scores) and every query's scores equal bm25s' own ``index`` exactly."""
    from lmeb.models import bm25_index

    rng = np.random.default_rng(3)
    words = ["apples", "running", "river", "the", "of", "violin", "orchard", "breads", "gardens", "letter",
             "windows", "clouds", "stone", "a", "concert", "Apple", "RUNS", "x", "42", "don't", "Café", "naïve",
             "STRASSE", "straße", "İstanbul", "co-op", "_under_score"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(0, 30)))) for _ in range(97)] + ["", "the of a"]
    searcher = BM25Searcher(method=method)
    theirs = bm25s.BM25(k1=1.5, b=0.75, delta=0.5, method=method)
    theirs.index(searcher._tokenize(texts), show_progress=False)
    mine = bm25s.BM25(k1=1.5, b=0.75, delta=0.5, method=method)
    bm25_index.build_index(mine, texts, searcher.stopwords, searcher._stemmer, chunk=7)
    assert set(mine.vocab_dict) == set(theirs.vocab_dict) and mine.scores["num_docs"] == len(texts)
    for token, col in theirs.vocab_dict.items():
        if token == "":
            continue
        a, b = theirs.scores["indptr"][col:col + 2]
        c, d = mine.scores["indptr"][mine.vocab_dict[token]:mine.vocab_dict[token] + 2]
        assert np.array_equal(theirs.scores["indices"][a:b], mine.scores["indices"][c:d])
        assert np.array_equal(theirs.scores["data"][a:b], mine.scores["data"][c:d])
    assert (theirs.nonoccurrence_array is None) == (mine.nonoccurrence_array is None)
    for tokens in searcher.query_tokens(["apple river running", "concert concert windows", "zebra"]):
        assert np.array_equal(searcher.scores(mine, tokens), searcher.scores(theirs, tokens))
