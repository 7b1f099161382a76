"""Retrieve-then-rerank: only the first-stage top k moves, ranks below k stay, the tie rule holds."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from lmeb.data.reader import load_subset
from lmeb.engine.metrics import evaluate
from lmeb.engine.rerank import rerank, rerank_candidates
from lmeb.engine.retrieval import search_subset
from lmeb.errors import LmebError
from lmeb.ordering import ranking
from lmeb.tasks.registry import get_task
from lmeb.tasks.settings import setting_instruction


class WordOverlap:
    """A deterministic fake reranker: shared words between query and passage, coarse so that ties happen."""

    name = "overlap"

    def __init__(self) -> None:
        self.calls: list[tuple[int, str | None]] = []

    def score(self, pairs: list[tuple[str, str]], instruction: str | None = None) -> np.ndarray:
        self.calls.append((len(pairs), instruction))
        return np.array([float(len(set(q.lower().split()) & set(d.lower().split()))) for q, d in pairs])

    def config(self) -> dict:
        return {"class": "WordOverlap"}


@pytest.fixture(scope="module")
def subset(sample_data: Path):
    return load_subset(get_task("LoCoMo"), sample_data, get_task("LoCoMo").subset_names[0])


def first_stage(subset, n: int = 12) -> dict[str, dict[str, float]]:
    """A pseudo-random first-stage run over each query's candidates, with a few tied scores."""
    run = {}
    for qid in subset.query_ids:
        cands = subset.candidates(qid) or subset.corpus.ids
        scored = {d: float(zlib.crc32(f"{qid}|{d}".encode()) % 7) for d in cands}
        run[qid] = dict(ranking(scored)[:n])
    return run


def test_rerank_reorders_only_the_top_k(subset) -> None:
    stage1 = first_stage(subset)
    fake = WordOverlap()
    out = rerank(subset, stage1, fake, top_k=5, instruction="Find it.")
    assert fake.calls == [(sum(min(5, len(r)) for r in stage1.values()), "Find it.")]  # one call for the subset
    texts = dict(zip(subset.query_ids, subset.query_texts, strict=True))
    for qid in subset.query_ids:
        before = ranking(stage1[qid])
        after = ranking(out[qid])
        assert list(out[qid]) == [d for d, _ in after]  # insertion order = rank order
        assert after[5:] == before[5:]  # ranks below k: same documents, same order, same scores
        assert {d for d, _ in after[:5]} == {d for d, _ in before[:5]}
        head = {d: fake.score([(texts[qid], subset.corpus.texts[subset.corpus.row[d]])])[0] for d, _ in before[:5]}
        assert [d for d, _ in after[:5]] == [d for d, _ in ranking(head)]  # reranker order, ties by doc id desc
        assert min(s for _, s in after[:5]) > max((s for _, s in after[5:]), default=-np.inf)
        tied = [s for s in head.values()]
        assert len({out[qid][d] for d in head}) == len(set(tied))  # equal reranker scores stay equal


def test_rerank_with_k_above_the_run_and_missing_queries(subset) -> None:
    stage1 = first_stage(subset, n=3)
    dropped = subset.query_ids[0]
    del stage1[dropped]
    out = rerank(subset, stage1, WordOverlap(), top_k=100)
    assert out[dropped] == {} and list(out) == subset.query_ids
    with pytest.raises(LmebError, match="not in the corpus"):
        rerank(subset, {subset.query_ids[1]: {"no-such-doc": 1.0}}, WordOverlap())
    with pytest.raises(LmebError, match="not in the subset"):
        rerank(subset, {"no-such-query": {}}, WordOverlap())


def test_rerank_candidates_scores_each_query_over_its_candidates(subset) -> None:
    fake = WordOverlap()
    run = rerank_candidates(subset, fake, None, k=1000)
    assert list(run) == subset.query_ids
    for qid in subset.query_ids:
        cands = set(subset.candidates(qid) or subset.corpus.ids) & set(subset.corpus.ids)
        assert set(run[qid]) == cands
        assert list(run[qid].items()) == ranking(run[qid])
    assert sum(n for n, _ in fake.calls) == sum(len(r) for r in run.values())
    result = evaluate(subset.qrels, run)
    assert result.main_score > 0.1  # relevant sample documents repeat the query's words


def test_instruction_rule(subset) -> None:
    assert setting_instruction("wo_inst", subset.instruction) is None
    assert setting_instruction("w_inst", subset.instruction) == subset.instruction
    with pytest.raises(LmebError):
        setting_instruction("other", subset.instruction)




@pytest.fixture(scope="module")
def tiny_kalm(shared_dir: Path, one_thread) -> Path:
    path = shared_dir / "kalm_tiny" / "tiny_model"
    if not (path / "model.safetensors").is_file():
        pytest.skip(f"{path} not present")
    return path


def test_kalm_over_bm25_on_a_real_subset(real_data: Path, tiny_kalm: Path) -> None:
    from lmeb.models.kalm import KalmReranker
    from lmeb.models.registry import load_model

    task = get_task("Proced_mem_bench")
    real = load_subset(task, real_data, "hard")
    stage1 = search_subset(load_model("bm25"), real, 1000)
    kalm = KalmReranker(tiny_kalm, device="cpu", max_length=128)
    out = rerank(real, stage1, kalm, top_k=20, instruction=setting_instruction("w_inst", real.instruction))
    unique = {d for qid in real.query_ids for d, _ in ranking(stage1[qid])[:20]}
    assert kalm.stats["encoded"] == len(unique) < kalm.stats["pairs"]  # each passage encoded once
    for qid in real.query_ids:
        assert ranking(out[qid])[20:] == ranking(stage1[qid])[20:]
    evaluate(real.qrels, out)  # a valid run for the metrics


def test_cross_encoder_reranker(tmp_path: Path, minilm_path: Path, subset, one_thread) -> None:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from lmeb.models.cross_encoder import CrossEncoderReranker

    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=1, max_position_embeddings=128)
    BertForSequenceClassification(config).save_pretrained(tmp_path / "ce")
    tokenizer.save_pretrained(tmp_path / "ce")
    model = CrossEncoderReranker(tmp_path / "ce", batch_size=8)
    pairs = [("where is the harbor", "the harbor is near the lighthouse"), ("a", "b")]
    scores = model.score(pairs, instruction="ignored by default")
    assert scores.shape == (2,) and np.isfinite(scores).all() and ((scores > 0) & (scores < 1)).all()  # sigmoid
    np.testing.assert_allclose(model.score(pairs), scores, atol=1e-6)
    templated = CrossEncoderReranker(tmp_path / "ce", instruction_template="{instruction} {query}")
    manual = templated.score([("Find it. " + q, d) for q, d in pairs])
    np.testing.assert_allclose(templated.score(pairs, "Find it."), manual, atol=1e-6)
    assert model.config()["class"] == "CrossEncoderReranker" and model.name == "ce"
    out = rerank(subset, first_stage(subset), model, top_k=4)
    assert all(ranking(out[q])[4:] == ranking(first_stage(subset)[q])[4:] for q in subset.query_ids)
    with pytest.raises(LmebError, match="does not exist"):
        CrossEncoderReranker(tmp_path / "missing")


@pytest.mark.slow
def test_lmeb_run_with_a_kalm_reranker_writes_results(real_data: Path, tiny_kalm: Path, tmp_path: Path) -> None:
    from lmeb.cli import main

    out = tmp_path / "results"
    cache = tmp_path / "cache"
    code = main(["run", "--model", "bm25", "--reranker", f"kalm:{tiny_kalm}", "--rerank-top-k", "10",
                 "--tasks", "Proced_mem_bench/hard", "--data", str(real_data), "--output", str(out),
                 "--cache-dir", str(cache), "--no-progress"])
    assert code == 0
    files = list(out.glob("*/wo_inst/Proced_mem_bench.json"))
    assert len(files) == 1 and "tiny_model" in files[0].parent.parent.name
    result = json.loads(files[0].read_text())
    assert result["scores"]["test"][0]["hf_subset"] == "hard"
    # The reranker's own work is recorded, and its passage states went to the run's cache folder.
    counts = result["lmeb"]["subsets"]["hard"]["model_counts"]["reranker"]
    queries = result["lmeb"]["subsets"]["hard"]["queries"]
    assert counts["pairs"] == 10 * queries
    assert 0 < counts["encoded"] <= counts["pairs"]
    assert any((cache / "kalm").rglob("*"))
