"""KaLM-Reranker-V1 adapter against the reference wrapper's scores on a tiny random t5gemma2 model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lmeb.errors import LmebError  # noqa: E402
from lmeb.models.kalm import KalmReranker  # noqa: E402
from lmeb.models.kalm_cache import PassageCache  # noqa: E402
from lmeb.models.kalm_inputs import (  # noqa: E402
    DEFAULT_INSTRUCTION,
    DEFAULT_SYSTEM_INSTRUCTION,
    decoder_prompt,
    mep_pool,
)

RUNS = ("chunk4", "chunk1", "chunkNone", "chunk4_trunc")


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


@pytest.fixture(scope="module")
def tiny(shared_dir: Path) -> Path:
    path = shared_dir / "kalm_tiny"
    if not (path / "tiny_model" / "model.safetensors").is_file():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(scope="module")
def triples(tiny: Path) -> list[dict]:
    return json.loads((tiny / "triples.json").read_text(encoding="utf-8"))


def reference(tiny: Path, run: str) -> tuple[dict, np.ndarray]:
    ref = json.loads((tiny / "reference" / f"ref_{run}.json").read_text(encoding="utf-8"))
    by_id = dict(zip(ref["ids"], ref["scores"], strict=True))
    return ref["settings"], by_id


def load(tiny: Path, settings: dict | None = None, **kwargs) -> KalmReranker:
    s = settings or {}
    opts = {k: s[k] for k in ("chunk_size", "max_length", "query_max_length") if k in s}
    if "system_instruction" in s:
        opts["system_instruction"] = s["system_instruction"]
    return KalmReranker(tiny / "tiny_model", device="cpu", **opts, **kwargs)


def score_triples(model: KalmReranker, triples: list[dict]) -> np.ndarray:
    """Score every triple, one ``score`` call per distinct instruction, in a scrambled order."""
    out = np.full(len(triples), np.nan)
    for inst in sorted({t["instruction"] for t in triples}):
        idx = [i for i, t in enumerate(triples) if t["instruction"] == inst][::-1]
        out[idx] = model.score([(triples[i]["query"], triples[i]["document"]) for i in idx], inst)
    return out


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.slow
def test_scores_equal_reference_with_and_without_passage_cache(tiny: Path, triples: list[dict], run: str) -> None:
    settings, by_id = reference(tiny, run)
    expected = np.array([by_id[t["id"]] for t in triples])
    shared = load(tiny, settings, batch_size=3)  # small batches: pooled states of different lengths padded together
    per_pair = load(tiny, settings, batch_size=32, share_passages=False)  # the reference's encode-per-pair
    got_shared, got_per_pair = score_triples(shared, triples), score_triples(per_pair, triples)
    assert np.abs(got_shared - expected).max() <= 1e-5
    assert np.abs(got_per_pair - expected).max() <= 1e-5
    assert np.abs(got_shared - got_per_pair).max() <= 1e-5
    assert shared.stats["encoded"] < per_pair.stats["encoded"] == len(triples)  # one triple repeats a passage


@pytest.mark.slow
def test_passage_states_computed_once_and_reused_from_ram_and_disk(tiny: Path, triples: list[dict],
                                                                   tmp_path: Path) -> None:
    queries = sorted({t["query"] for t in triples})[:5]
    docs = [t["document"] for t in triples[:6]]
    pairs = [(q, d) for q in queries for d in docs]  # every passage shared by 5 queries
    plain = load(tiny, share_passages=False).score(pairs)

    model = load(tiny, cache_dir=tmp_path / "cache")
    calls: list[int] = []
    model.model.get_encoder().register_forward_hook(lambda mod, args, kw, out: calls.append(kw["input_ids"].shape[0]),
                                                    with_kwargs=True)
    first = model.score(pairs)
    assert sum(calls) == len(set(docs)) and model.stats["encoded"] == len(set(docs))
    again = model.score(pairs[::-1])[::-1]  # all passages now in RAM: no encoder pass at all
    assert sum(calls) == len(set(docs)) and model.stats["ram_hits"] == len(set(docs))
    np.testing.assert_allclose(first, plain, atol=1e-5, rtol=0)
    np.testing.assert_allclose(again, first, atol=1e-6, rtol=0)

    reloaded = load(tiny, cache_dir=tmp_path / "cache")  # a new process: states come from disk
    from_disk = reloaded.score(pairs)
    assert reloaded.stats["encoded"] == 0 and reloaded.stats["disk_hits"] == len(set(docs))
    np.testing.assert_allclose(from_disk, first, atol=1e-6, rtol=0)
    other = load(tiny, cache_dir=tmp_path / "cache", chunk_size=2)  # another chunk size: another cache folder
    other.score(pairs[:1])
    assert other.stats["disk_hits"] == 0 and len(list((tmp_path / "cache").glob("kalm-*"))) == 2


@pytest.mark.slow
def test_tiny_ram_budget_still_scores_right(tiny: Path, triples: list[dict]) -> None:
    pairs = [(t["query"], t["document"]) for t in triples]
    full = load(tiny).score(pairs, DEFAULT_INSTRUCTION)
    small = load(tiny, cache_max_bytes=2048, batch_size=4)  # a few passages per wave, LRU evicts
    np.testing.assert_allclose(small.score(pairs, DEFAULT_INSTRUCTION), full, atol=1e-5, rtol=0)
    assert small.ram_cache.nbytes <= 2048


def test_prompt_string_is_the_spec_string(tiny: Path) -> None:
    model = load(tiny)
    expected = (
        "<bos><start_of_turn>user\n"
        'Judge whether the Document meets the requirements based on the Query and the Instruct provided. '
        'Note that the answer can only be "yes" or "no".\n\n'
        "<Instruct>: Given a query, retrieve documents that answer the query.\n"
        "<Query>: what is up?<end_of_turn>\n<start_of_turn>model\n\n\n\n"
    )
    assert model.prompt("what is up?") == expected
    assert decoder_prompt(DEFAULT_SYSTEM_INSTRUCTION, DEFAULT_INSTRUCTION, "what is up?") == expected
    assert "<Instruct>: Find the turn.\n" in model.prompt("q", "Find the turn.")
    assert "<Instruct>: \n" in model.prompt("q", "")  # an empty instruction is kept, None means the default
    short = load(tiny, query_max_length=3)
    ids = short.tokenizer("one two three four five six", add_special_tokens=False)["input_ids"][:3]
    assert short.prompt("one two three four five six").split("<Query>: ")[1].startswith(
        short.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False) + "<end_of_turn>")
    assert (model.yes_id, model.no_id) == (413, 376)


def test_mep_pooling_on_hand_made_tensors() -> None:
    hidden = torch.arange(2 * 6 * 2, dtype=torch.float32).view(2, 6, 2)
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 0, 0, 0, 0]])
    pooled, pmask = mep_pool(hidden, mask, 4)  # 6 tokens -> 2 chunks of 4 (right-padded)
    assert pooled.shape == (2, 2, 2) and pmask.tolist() == [[1, 1], [1, 0]]
    assert torch.allclose(pooled[0, 0], hidden[0, :4].mean(0))
    assert torch.allclose(pooled[0, 1], hidden[0, 4])  # partial last chunk: mean over its one real token
    assert torch.allclose(pooled[1, 0], hidden[1, :2].mean(0))
    assert torch.equal(pooled[1, 1], torch.zeros(2))  # all-padding chunk: zero vector, mask 0
    same, same_mask = mep_pool(hidden, mask, None)
    assert same is hidden and same_mask is mask
    ones, ones_mask = mep_pool(hidden, mask, 1)
    assert torch.equal(ones_mask, mask) and torch.equal(ones[0, :5], hidden[0, :5])


def test_padding_side_right_even_if_tokenizer_says_left(tiny: Path, triples: list[dict], tmp_path: Path) -> None:
    model_dir = tmp_path / "left"
    shutil.copytree(tiny / "tiny_model", model_dir)
    config = json.loads((model_dir / "tokenizer_config.json").read_text())
    (model_dir / "tokenizer_config.json").write_text(json.dumps({**config, "padding_side": "left"}))
    model = KalmReranker(model_dir, device="cpu", batch_size=4)
    assert model.tokenizer.padding_side == "right"
    _, by_id = reference(tiny, "chunk4")
    np.testing.assert_allclose(score_triples(model, triples), [by_id[t["id"]] for t in triples], atol=1e-5, rtol=0)


def test_fast_head_equals_full_forward_with_softcapping(tiny: Path, triples: list[dict]) -> None:
    model = load(tiny)
    model.model.config.decoder.final_logit_softcapping = 0.5  # the real models may cap logits: both paths must
    pairs = [(t["query"], t["document"]) for t in triples[:8]]
    fast = model.score(pairs)
    model.fast_head = False
    np.testing.assert_allclose(model.score(pairs), fast, atol=1e-6, rtol=0)


def test_errors_are_one_line(tiny: Path, tmp_path: Path) -> None:
    model = load(tiny)
    assert model.score([]).shape == (0,)
    with pytest.raises(LmebError, match="pair 1"):
        model.score([("q", "d"), ("q",)])  # type: ignore[list-item]
    with torch.no_grad():
        model.model.lm_head.out_proj.weight[413] = float("nan")
    with pytest.raises(LmebError, match="tiny_model: non-finite yes/no logits"):
        model.score([("q", "d")])
    with pytest.raises(LmebError, match="does not exist"):
        KalmReranker(tmp_path / "missing")
    with pytest.raises(LmebError, match="chunk_size"):
        KalmReranker(tiny / "tiny_model", chunk_size=0)
    assert model.config()["chunk_size"] == 4 and model.config()["padding_side"] == "right"


def test_lru_evicts_least_recently_used() -> None:
    cache = PassageCache(max_bytes=3 * 16)
    for key in "abc":
        cache.put(key, torch.zeros(4))  # 16 bytes each
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("d", torch.zeros(4))
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 3
    cache.put("huge", torch.zeros(100))  # larger than the budget: not kept
    assert cache.get("huge") is None and cache.nbytes == 48
