"""Out-of-memory backoff in every local adapter (``lmeb.models.oom``), tested on CPU by injecting the error.

The model's forward call is wrapped to raise ``torch.cuda.OutOfMemoryError`` (the class exists in CPU builds
of torch) whenever a batch has more rows than a chosen limit: the adapter must halve that batch down to the
limit, return the vectors/scores of an unconstrained run (in the same order), count the halvings in
``stats``, and, at limit 0 (batch size 1 still fails), end with one ``LmebError`` line naming the model and the
text's length. Without an error the adapters give bit-identical numbers to the library call lmeb made before.

"The same numbers" after a split means equal to float rounding: a text's vector depends on the shape of the
batch it ran in (the matrix kernels block by shape: a half batch padded to the full width still moves MiniLM
by ~3e-7 on CPU), exactly as an unconstrained run with another ``batch_size`` would.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lmeb.errors import LmebError  # noqa: E402
from lmeb.models.oom import OOM_KEY, is_out_of_memory, run_with_backoff  # noqa: E402
from lmeb.reporter import Reporter  # noqa: E402

TEXTS = [
    "Remember that the meeting moved to Thursday at ten in the small room.",
    "ok",
    "The user prefers tea without sugar and dislikes loud music while working on reports late at night.",
    "Step 3: open the valve, then wait until the pressure gauge reads two bar before closing it again.",
    "ok",
    "Where did I put the keys?",
    "A much longer passage about a holiday in the mountains, the weather, the food, the people met on the way, "
    "and the long walk back to the station in the rain, which nobody enjoyed but everybody remembers.",
    "short note",
    "Gorilla: torch.hub.load('pytorch/vision', 'resnet50') loads a pretrained ResNet-50 image classifier.",
    "Where did I put the bag?",
]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


def _rows(args: tuple, kwargs: dict) -> int:
    """The batch size of a forward call: the first dimension of its first tensor (dict values included)."""
    for value in [*args, *kwargs.values()]:
        if isinstance(value, Mapping):
            value = next((v for v in value.values() if isinstance(v, torch.Tensor)), None)
        if isinstance(value, torch.Tensor):
            return int(value.shape[0])
    raise AssertionError("no tensor in the forward call")


def inject_oom(monkeypatch: pytest.MonkeyPatch, module: Any, limit: int) -> list[int]:
    """Make ``module.forward`` raise CUDA's out-of-memory error on batches over ``limit`` rows; returns the
    batch sizes it ran (so a test can check that nothing over the limit got through)."""
    forward = module.forward
    ran: list[int] = []

    def limited(*args: Any, **kwargs: Any) -> Any:
        rows = _rows(args, kwargs)
        if rows > limit:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {rows} rows (injected)")
        ran.append(rows)
        return forward(*args, **kwargs)

    monkeypatch.setattr(module, "forward", limited)
    return ran


def same_numbers(got: np.ndarray, expected: np.ndarray) -> None:
    """Same shape and order, equal to float rounding of a different batch shape (see the module docstring)."""
    assert got.shape == expected.shape
    assert float(np.abs(got - expected).max()) <= 1e-6


def check_one_line(exc: pytest.ExceptionInfo, name: str, unit: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith(f"{name}: out of memory on one text of ") and unit in message
    assert "even at batch size 1" in message


# ------------------------------------------------------------------------------------------ the shared rule
def test_backoff_halves_in_order_and_counts() -> None:
    def run(batch: list[int]) -> list[int]:
        if len(batch) > 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return batch

    stats: dict[str, int] = {}
    pieces = run_with_backoff(list(range(10)), run, stats=stats, name="m", length=str)
    assert [i for piece in pieces for i in piece] == list(range(10))  # every item once, in order
    assert max(len(p) for p in pieces) <= 3 and stats[OOM_KEY] == 3  # 10 -> 5+5 -> (3+2)+(3+2)


def test_backoff_leaves_other_errors_alone() -> None:
    def run(batch: list[int]) -> None:
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_with_backoff([1, 2], run, stats={}, name="m", length=str)
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert not is_out_of_memory(ValueError("out of memory"))


# ------------------------------------------------------------------------------------------------ adapters
def test_sentence_transformer_backoff(monkeypatch: pytest.MonkeyPatch, minilm_path: Path) -> None:
    from lmeb.models.sentence_transformer import SentenceTransformerEncoder

    enc = SentenceTransformerEncoder(minilm_path, device="cpu", batch_size=4)
    expected = enc.encode(TEXTS, "document")
    direct = enc.model.encode(TEXTS, batch_size=4, convert_to_numpy=True)  # the call lmeb made before
    assert np.array_equal(expected, direct)
    ran = inject_oom(monkeypatch, enc.model, 1)
    got = enc.encode(TEXTS, "document")
    same_numbers(got, expected)
    assert max(ran) == 1
    assert enc.stats[OOM_KEY] == 2 * 3 + 1  # batches 4, 4, 2: each 4 halves 3 times, the 2 once
    inject_oom(monkeypatch, enc.model, 0)
    with pytest.raises(LmebError) as exc:
        enc.encode(TEXTS[:1], "document")
    check_one_line(exc, enc.name, "tokens")


def test_hf_encoder_backoff(monkeypatch: pytest.MonkeyPatch, minilm_path: Path) -> None:
    from lmeb.models.hf import HFEncoder

    enc = HFEncoder(minilm_path, device="cpu", batch_size=4, max_length=128)
    expected = enc.encode(TEXTS, "query", "Find the memory")
    ran = inject_oom(monkeypatch, enc.model, 2)
    got = enc.encode(TEXTS, "query", "Find the memory")
    same_numbers(got, expected)
    assert max(ran) == 2
    assert enc.stats[OOM_KEY] == 2  # batches 4, 4, 2: each 4 halves once
    inject_oom(monkeypatch, enc.model, 0)
    with pytest.raises(LmebError) as exc:
        enc.encode(TEXTS[6:7], "document")
    check_one_line(exc, enc.name, "tokens")


def test_kalm_backoff(monkeypatch: pytest.MonkeyPatch, shared_dir: Path) -> None:
    from lmeb.models.kalm import KalmReranker

    tiny = shared_dir / "kalm_tiny"
    if not (tiny / "tiny_model" / "model.safetensors").is_file():
        pytest.skip(f"{tiny} not present")
    triples = json.loads((tiny / "triples.json").read_text(encoding="utf-8"))[:8]
    pairs = [(t["query"], t["document"]) for t in triples]

    def load() -> KalmReranker:
        return KalmReranker(tiny / "tiny_model", device="cpu", batch_size=4)

    expected = load().score(pairs)
    model = load()
    ran_encoder = inject_oom(monkeypatch, model.model.get_encoder(), 1)
    ran_decoder = inject_oom(monkeypatch, model.model.model, 2)  # the fast head's decoder call
    got = model.score(pairs)
    same_numbers(got, expected)
    assert max(ran_encoder) == 1 and max(ran_decoder) == 2
    assert model.stats[OOM_KEY] == 2 * 3 + 2 * 1  # encoder: two batches of 4 to 1s; decoder: two 4s to 2s
    assert model.stats["encoded"] == 8  # each passage still encoded once
    inject_oom(monkeypatch, model.model.get_encoder(), 0)
    with pytest.raises(LmebError) as exc:
        model.score([("q", "a passage never seen before")])
    check_one_line(exc, model.name, "tokens")


def test_cross_encoder_backoff(monkeypatch: pytest.MonkeyPatch, minilm_path: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from lmeb.models.cross_encoder import CrossEncoderReranker

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(tmp_path / "tiny_ce")
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(tmp_path / "tiny_ce")
    pairs = [(TEXTS[5], text) for text in TEXTS]

    reranker = CrossEncoderReranker(tmp_path / "tiny_ce", batch_size=4, device="cpu", max_length=128)
    expected = reranker.score(pairs)
    direct = reranker.model.predict(pairs, batch_size=4, convert_to_numpy=True)  # the call lmeb made before
    assert np.array_equal(expected, direct.astype(np.float64))
    assert reranker.stats == {}  # nothing recorded when nothing failed
    ran = inject_oom(monkeypatch, reranker.model, 1)
    got = reranker.score(pairs)
    same_numbers(got, expected)
    assert max(ran) == 1
    assert reranker.stats[OOM_KEY] == 2 * 3 + 1
    inject_oom(monkeypatch, reranker.model, 0)
    with pytest.raises(LmebError) as exc:
        reranker.score(pairs[:1])
    check_one_line(exc, reranker.name, "characters")


def test_backoffs_reach_the_run_provenance(monkeypatch: pytest.MonkeyPatch, minilm_path: Path,
                                           sample_data: Path) -> None:
    """A run whose batches are halved records ``model_counts.model.oom_backoffs`` per subset and in the
    summary, with the same scores as the run without the error."""
    import lmeb
    from lmeb.models.hf import HFEncoder

    enc = HFEncoder(minilm_path, device="cpu", batch_size=8, max_length=64)
    plain = lmeb.evaluate(enc, tasks="Proced_mem_bench/easy", data=sample_data, cache_dir=None,
                          reporter=Reporter(lambda _: None))
    inject_oom(monkeypatch, enc.model, 3)
    halved = lmeb.evaluate(enc, tasks="Proced_mem_bench/easy", data=sample_data, cache_dir=None,
                           reporter=Reporter(lambda _: None))
    subset = halved[0].subsets["easy"]
    counts = subset.provenance["model_counts"]["model"]
    assert counts["oom_backoffs"] > 0 and counts["oom_backoffs"] == enc.stats[OOM_KEY]
    assert halved.summaries[0].model_counts["model"]["oom_backoffs"] == counts["oom_backoffs"]
    assert "oom_backoffs" not in plain[0].subsets["easy"].provenance["model_counts"]["model"]
    for metric, value in plain[0].subsets["easy"].scores.items():
        assert subset.scores[metric] == pytest.approx(value, abs=1e-9), metric


@pytest.mark.slow  # mteb's import takes seconds
def test_mteb_model_backoff_repeats_the_call_with_smaller_batches() -> None:
    """An mteb model batches inside its own ``encode``: out of memory repeats the call with half the batch
    size (counted on the parent's ``stats``), and one line at batch size 1."""
    from types import SimpleNamespace

    mteb = pytest.importorskip("mteb")
    from lmeb.models.mteb_model import MtebTaskEncoder
    from lmeb.tasks.registry import get_task

    task = get_task("Gorilla")
    metadata = mteb.get_task(task.mteb_name).metadata

    class Model:  # vectors from the texts mteb's DataLoader hands over; out of memory over ``limit``
        def __init__(self) -> None:
            self.limit = 2
            self.sizes: list[int] = []

        def encode(self, loader: Any, *, batch_size: int, **kwargs: Any) -> np.ndarray:
            self.sizes.append(batch_size)
            if batch_size > self.limit:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
            texts = [t for batch in loader for t in batch["text"]]
            return np.array([[len(t), sum(map(ord, t)) % 97] for t in texts], dtype=np.float32)

    model = Model()
    parent = SimpleNamespace(model=model, batch_size=8, stats={}, name="fake-mteb", similarity="cosine")
    encoder = MtebTaskEncoder(parent, metadata, task.subsets[0].mteb_name)
    got = encoder.encode(TEXTS, "document")
    assert got[:, 0].tolist() == [len(t) for t in TEXTS]  # every text once, in order
    assert model.sizes == [8, 4, 2] and parent.stats[OOM_KEY] == 2
    model.limit = 0
    with pytest.raises(LmebError) as exc:
        encoder.encode(TEXTS, "document")
    message = str(exc.value)
    assert "\n" not in message and message.startswith("fake-mteb: out of memory on a text of ")
    assert f"{max(len(t) for t in TEXTS)} characters even at batch size 1" in message
