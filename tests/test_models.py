"""Model adapters: pooling, the raw transformers adapter against sentence-transformers, instructions,
presets, the non-finite check, cache-key configs and one-line errors for bad model specs."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lmeb.errors import LmebError  # noqa: E402
from lmeb.models.base import check_finite, with_instruction  # noqa: E402
from lmeb.models.fingerprint import weights_fingerprint  # noqa: E402
from lmeb.models.hf import HFEncoder, pad_batch, pool  # noqa: E402
from lmeb.models.presets import RIGHT_PADDING, get_preset, presets  # noqa: E402
from lmeb.models.registry import load_model, load_reranker  # noqa: E402
from lmeb.models.sentence_transformer import SentenceTransformerEncoder  # noqa: E402

TEXTS = [
    "Caroline went to the LGBTQ support group on 7 May 2023.",
    "x",
    "Melanie painted a sunrise over the lake last year, and she loved how the colours came out. " * 12,
    "What did Caroline research?",
    "",
    "A fairly ordinary sentence of medium length about hiking in the mountains with friends.",
]


# --- pooling on hand-made tensors -------------------------------------------------------------------


def _hidden() -> torch.Tensor:
    # batch 2, 4 positions, dim 2: position p of row r holds [10 * r + p, -(10 * r + p)]
    base = torch.tensor([[0.0, 1, 2, 3], [10, 11, 12, 13]])
    return torch.stack([base, -base], dim=-1)


def test_pooling_right_padding():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    h = _hidden()
    assert pool(h, mask, "first").tolist() == [[0, 0], [10, -10]]
    assert pool(h, mask, "last").tolist() == [[2, -2], [11, -11]]
    assert pool(h, mask, "mean").tolist() == [[1, -1], [10.5, -10.5]]


def test_pooling_left_padding():
    mask = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]])
    h = _hidden()
    assert pool(h, mask, "first").tolist() == [[1, -1], [12, -12]]
    assert pool(h, mask, "last").tolist() == [[3, -3], [13, -13]]
    assert pool(h, mask, "mean").tolist() == [[2, -2], [12.5, -12.5]]


def test_pooling_full_rows_and_unknown_method():
    mask = torch.ones(2, 4, dtype=torch.long)
    h = _hidden()
    assert pool(h, mask, "last").tolist() == [[3, -3], [13, -13]]
    assert pool(h, mask, "first").tolist() == [[0, 0], [10, -10]]
    with pytest.raises(LmebError, match="unknown pooling 'max'"):
        pool(h, mask, "max")


def test_pad_batch_sides():
    ids = [[5, 6, 7], [8]]
    extra = {"token_type_ids": [[0, 0, 1], [1]]}
    right = pad_batch(ids, extra, pad_id=0, side="right")
    assert right["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert right["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert right["token_type_ids"].tolist() == [[0, 0, 1], [1, 0, 0]]
    left = pad_batch(ids, {}, pad_id=9, side="left")
    assert left["input_ids"].tolist() == [[5, 6, 7], [9, 9, 8]]
    assert left["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]


def test_pad_batch_of_empty_texts_keeps_one_masked_column():
    batch = pad_batch([[], []], {}, pad_id=0, side="left")
    assert batch["input_ids"].tolist() == [[0], [0]]
    assert batch["attention_mask"].tolist() == [[0], [0]]


# --- instructions and the finiteness check -----------------------------------------------------------


def test_with_instruction_exact_concatenation():
    got = with_instruction(["q1", "q2"], "query", "Find it")
    assert got == ["Instruct: Find it\nQuery:q1", "Instruct: Find it\nQuery:q2"]
    assert with_instruction(["d"], "document", "Find it") == ["d"]
    assert with_instruction(["q"], "query", None) == ["q"]
    assert with_instruction(["q"], "query", "X", template="<{}> ") == ["<X> q"]


def test_check_finite_names_model_and_index():
    ok = np.ones((3, 2), dtype=np.float32)
    assert check_finite(ok, "m") is ok
    bad = ok.copy()
    bad[2, 1] = np.inf
    bad[1, 0] = np.nan
    with pytest.raises(LmebError, match=r"model 'm' .*text 1 \(2 of 3"):
        check_finite(bad, "m")


# --- real model: MiniLM through both adapters ------------------------------------------------------


@pytest.fixture(scope="module")
def st(minilm_path: Path) -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(minilm_path, device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def hf(minilm_path: Path) -> HFEncoder:
    # MiniLM's own settings: mean pooling, L2 norm, 256 tokens, right padding
    return HFEncoder(minilm_path, pooling="mean", normalize=True, max_length=256, batch_size=4, device="cpu")


@pytest.mark.slow
def test_hf_adapter_reproduces_sentence_transformers(st, hf):
    a = st.encode(TEXTS, "document")
    b = hf.encode(TEXTS, "document")
    assert a.dtype == b.dtype == np.float32 and a.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(b, a, atol=1e-5)
    # order restored after length sorting: each text alone gives its own row
    np.testing.assert_allclose(hf.encode([TEXTS[2]], "document")[0], b[2], atol=1e-5)
    assert st.similarity == hf.similarity == "cosine"


@pytest.mark.slow
def test_instruction_goes_to_queries_only(st, hf):
    for enc in (st, hf):
        q = enc.encode(["What did Caroline research?"], "query", "Find the turn")
        manual = enc.encode(["Instruct: Find the turn\nQuery:What did Caroline research?"], "document")
        np.testing.assert_allclose(q, manual, atol=1e-6)
        plain = enc.encode(["What did Caroline research?"], "query")
        assert not np.allclose(q, plain, atol=1e-3)
        d = enc.encode(["What did Caroline research?"], "document", "Find the turn")
        np.testing.assert_allclose(d, plain, atol=1e-6)


def test_empty_input(st, hf):
    assert st.encode([], "query").shape[0] == 0
    assert hf.encode([], "query").shape[0] == 0


@pytest.mark.slow
def test_non_finite_embedding_names_callers_index(hf, monkeypatch):
    real = hf.model

    class NanOnLongest(torch.nn.Module):
        def forward(self, input_ids, attention_mask, **kwargs):
            out = real(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state.clone()
            out[attention_mask.sum(dim=1) > 100] = float("nan")  # only TEXTS[2] is that long
            return types.SimpleNamespace(last_hidden_state=out)

    monkeypatch.setattr(hf, "model", NanOnLongest())
    with pytest.raises(LmebError, match=r"model '.+' produced a non-finite .* text 2 \(1 of 6"):
        hf.encode(TEXTS, "document")


def test_non_finite_from_sentence_transformers(st, monkeypatch):
    def fake_encode(inputs, **kwargs):
        out = np.zeros((len(inputs), 3), dtype=np.float32)
        out[1, 0] = np.nan
        return out

    monkeypatch.setattr(st.model, "encode", fake_encode)
    with pytest.raises(LmebError, match="text 1"):
        st.encode(["a", "b"], "query")


def test_configs_key_the_cache(st, hf, minilm_path, tmp_path):
    cfg = hf.config()
    assert json.loads(json.dumps(cfg)) == cfg  # JSON-able
    for key in ("pooling", "normalize", "max_length", "precision", "padding_side", "instruction_template"):
        assert key in cfg
    assert cfg["fingerprint"] == st.config()["fingerprint"] == weights_fingerprint(minilm_path)
    assert cfg == hf.config() and hf.name and st.name
    assert st.config()["class"] != cfg["class"]
    # a change to the model files changes the fingerprint (weights linked, config edited)
    copy = tmp_path / "copy"
    copy.mkdir()
    for item in Path(minilm_path).iterdir():
        (copy / item.name).symlink_to(item)
    assert weights_fingerprint(copy) == cfg["fingerprint"]
    (copy / "config.json").unlink()
    (copy / "config.json").write_text((Path(minilm_path) / "config.json").read_text().replace("gelu", "relu"))
    assert weights_fingerprint(copy) != cfg["fingerprint"]


@pytest.mark.slow
def test_load_model_dispatch(minilm_path, hf):
    enc = load_model(f"hf:{minilm_path}", pooling="first", normalize=False, padding_side="left", max_length=None)
    cfg = enc.config()  # max_length: the checkpoint's own (256)
    assert (cfg["pooling"], cfg["normalize"], cfg["padding_side"], cfg["max_length"]) == ("first", False, "left", 256)
    assert cfg != hf.config()
    # a preset's official settings on local weights; explicit options override them
    bge_like = load_model(preset="bge-large-en-v1.5", model_path=str(minilm_path), precision="fp32")
    cfg = bge_like.config()
    assert (cfg["pooling"], cfg["padding_side"], cfg["max_length"], cfg["precision"]) == ("first", "right", 512, "fp32")
    assert cfg["preset"] == bge_like.name == "bge-large-en-v1.5"
    same = load_model("preset=bge-large-en-v1.5", model_path=minilm_path, precision="fp32", setting="w_inst")
    np.testing.assert_allclose(same.encode(["hello"]), bge_like.encode(["hello"]), atol=1e-6)
    assert isinstance(load_model(str(minilm_path)), SentenceTransformerEncoder)


def test_bad_model_specs_are_one_line_errors(tmp_path):
    with pytest.raises(LmebError, match="model path '/no/such/dir' does not exist and is not a hub id"):
        load_model("/no/such/dir")
    with pytest.raises(LmebError, match="model path 'x' does not exist and is not a hub id"):
        load_model("x")  # offline in tests: the hub cannot supply it
    with pytest.raises(LmebError, match=r"unknown preset 'Qwen3-Embed'; did you mean Qwen3-Embedding-0\.6B\?"):
        load_model("preset=Qwen3-Embed", model_path=str(tmp_path))
    with pytest.raises(LmebError, match="unknown preset 'nope'"):
        load_model(preset="nope")
    with pytest.raises(LmebError, match="does not apply to bm25"):
        load_model("bm25", pooling="mean")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LmebError, match="cannot load model directory") as info:
        load_model(f"hf:{empty}")
    assert "\n" not in str(info.value)


def test_reranker_specs_dispatch_lazily(monkeypatch, tmp_path):
    made = []

    class Fake:
        def __init__(self, path, **options):
            made.append((type(self).__name__, path, options))

    kalm = types.ModuleType("lmeb.models.kalm")
    kalm.KalmReranker = type("KalmReranker", (Fake,), {})
    ce = types.ModuleType("lmeb.models.cross_encoder")
    ce.CrossEncoderReranker = type("CrossEncoderReranker", (Fake,), {})
    monkeypatch.setitem(sys.modules, "lmeb.models.kalm", kalm)
    monkeypatch.setitem(sys.modules, "lmeb.models.cross_encoder", ce)
    small, local_ce = tmp_path / "kalm-small", tmp_path / "ce"
    small.mkdir()
    local_ce.mkdir()
    load_model("KaLM-Embedding/KaLM-Reranker-V1-Nano", batch_size=8)
    load_model(f"kalm:{small}")
    load_reranker(f"cross-encoder:{local_ce}", device="cpu")
    load_reranker("some/cross-encoder")
    assert made == [
        ("KalmReranker", "KaLM-Embedding/KaLM-Reranker-V1-Nano", {"batch_size": 8}),
        ("KalmReranker", str(small), {}),
        ("CrossEncoderReranker", str(local_ce), {"device": "cpu"}),
        ("CrossEncoderReranker", "some/cross-encoder", {}),
    ]


@pytest.mark.parametrize("prefix", ["", "st:", "hf:", "kalm:", "cross-encoder:"])
def test_a_mistyped_model_path_fails_before_torch_is_imported(prefix, monkeypatch, tmp_path):
    """A path that does not exist is one line at once, not after seconds of importing torch and transformers."""
    from lmeb.errors import LmebError

    for heavy in ("torch", "transformers", "sentence_transformers"):  # each adapter checks its path first
        monkeypatch.setitem(sys.modules, heavy, None)  # importing it would raise ImportError
    with pytest.raises(LmebError, match=r"model path '.*no-such-model' does not exist and is not a hub id"):
        load_model(f"{prefix}{tmp_path / 'no-such-model'}")


# --- presets -----------------------------------------------------------------------------------------


def test_all_paper_presets(shared_dir):
    spec = json.loads((shared_dir / "lmeb_spec" / "paper_model_configs.json").read_text())["models"]
    table = presets()
    assert list(table) == list(spec) and len(table) == 15
    for name, preset in table.items():
        assert preset.hub_id and "/" in preset.hub_id
        for setting in ("wo_inst", "w_inst"):
            raw = spec[name][setting]
            opts = preset.encoder_options(setting)
            assert opts["pooling"] == raw["pooler_type"] and opts["normalize"] == raw["do_norm"]
            assert opts["max_length"] == raw["max_length"] and opts["precision"] == raw["precision"]
            assert opts["instruction_template"] == raw["instruction_template"] == "Instruct: {}\nQuery:"
            assert opts["padding_side"] == ("right" if name in ("bge-m3", "bge-large-en-v1.5") else "left")
            assert preset.use_instruction(setting) is (setting == "w_inst")
            # what changes vectors is the same in both settings (documents embed once)
            vec = {k: v for k, v in opts.items() if k != "batch_size"}
            assert vec == {k: v for k, v in preset.encoder_options("wo_inst").items() if k != "batch_size"}
    assert {"bge-m3", "bge-large-en-v1.5"} == RIGHT_PADDING
    assert table["EmbeddingGemma-300M"].encoder_options()["dense_layers"] is True
    assert table["NV-Embed-v2"].encoder_options()["output_key"] == "sentence_embeddings"
    assert get_preset("qwen/qwen3-embedding-8b").name == "Qwen3-Embedding-8B"
    assert table["Qwen3-Embedding-0.6B"].encoder_options()["pooling"] == "last"
    assert table["bge-m3"].encoder_options()["pooling"] == "first"


@pytest.mark.slow
def test_dense_layers_after_pooling_match_sentence_transformers(minilm_path, tmp_path):
    """EmbeddingGemma's layout (Transformer, Pooling, Dense, Normalize) on MiniLM's weights plus a Dense."""
    from sentence_transformers.base.modules.dense import Dense

    model = tmp_path / "with_dense"
    model.mkdir()
    for item in Path(minilm_path).iterdir():
        if item.name != "modules.json":
            (model / item.name).symlink_to(item)
    torch.manual_seed(0)
    (model / "2_Dense").mkdir()
    Dense(384, 64, bias=True, activation_function=torch.nn.Tanh()).save(str(model / "2_Dense"))
    modules = json.loads((Path(minilm_path) / "modules.json").read_text())
    modules[2:] = [
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
        {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (model / "modules.json").write_text(json.dumps(modules))
    expected = SentenceTransformerEncoder(model, device="cpu").encode(TEXTS[:4], "document")
    enc = HFEncoder(model, pooling="mean", max_length=256, dense_layers=True, device="cpu")
    got = enc.encode(TEXTS[:4], "document")
    assert got.shape == (4, 64) and enc.config()["dense_layers"] is True
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_hf_encodes_a_batch_of_only_empty_texts(hf, monkeypatch):
    """A tokenizer that adds no special tokens (Qwen-style) gives an empty text no token at all; texts are
    batched longest first, so the last batch can hold only empty texts: it must still encode."""

    def no_special_tokens(texts):
        out = hf.tokenizer(texts, truncation=True, max_length=hf.max_length, add_special_tokens=False)
        return out["input_ids"], {}

    monkeypatch.setattr(hf, "_tokenize", no_special_tokens)
    vectors = hf.encode(["a real sentence"] + [""] * 4, "document")  # batch size 4: the second batch is [""]
    assert vectors.shape == (5, 384)
    assert np.isfinite(vectors).all()
