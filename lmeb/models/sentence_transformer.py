"""Any sentence-transformers model (a local directory or a hub id) as an ``Encoder``.

The model's own module stack (pooling, Dense, Normalize) and its ``similarity_fn_name`` decide the
vectors and how they are compared; lmeb only adds the w/ inst. query prefix and the finiteness check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from lmeb.errors import LmebError
from lmeb.models.base import (
    DEFAULT_INSTRUCTION_TEMPLATE,
    Kind,
    check_finite,
    check_instruction_template,
    with_instruction,
)
from lmeb.models.loading import (
    check_max_length,
    check_remote_code,
    default_device,
    loading_errors,
    normalize_precision,
    resolve_source,
    source_identity,
    token_limit,
    torch_dtype,
)
from lmeb.models.oom import run_with_backoff

ADAPTER_VERSION = 1  # bump when this adapter changes the vectors it returns (it keys the embedding cache)


def st_token_count(model: Any, inputs: list[str]) -> int:
    """The attention-mask tokens of ``inputs`` through a SentenceTransformer's own preprocessing (truncation
    included; ``preprocess`` from sentence-transformers 6, ``tokenize`` before)."""
    if not inputs:
        return 0
    features = model.preprocess(inputs) if hasattr(model, "preprocess") else model.tokenize(inputs)
    return int(features["attention_mask"].sum())


def st_batches(model: Any, inputs: list[Any], batch_size: int) -> list[list[int]]:
    """The batches (positions in ``inputs``) a sentence-transformers model (or cross-encoder) makes itself:
    longest first by its own length estimate, interleaved when it flattens inputs; lmeb runs them one call
    each so that one batch out of memory is halved alone (``lmeb.models.oom``), with the same vectors."""
    length = getattr(model, "_input_length", len)
    order = np.argsort([-length(x) for x in inputs])
    flatten = getattr(model, "_can_flatten_inputs", None)
    if callable(flatten) and flatten():
        order = model._interleave_sorted_indices(order)
    size = max(1, int(batch_size))
    return [order[start : start + size].tolist() for start in range(0, len(order), size)]


class SentenceTransformerEncoder:
    """Embeds texts with ``sentence_transformers.SentenceTransformer``.

    ``use_model_prompts`` applies the model's own ``prompts['query'/'document']`` (e.g. EmbeddingGemma's
    task prefixes) before lmeb's instruction; off by default, as the official LMEB scripts use none.
    A batch that runs out of accelerator memory is halved and retried (``lmeb.models.oom``).
    """

    def __init__(
        self,
        path_or_id: str | Path,
        device: str | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        instruction_template: str = DEFAULT_INSTRUCTION_TEMPLATE,
        precision: str = "fp32",
        *,
        revision: str | None = None,
        trust_remote_code: bool = False,
        use_model_prompts: bool = False,
        name: str | None = None,
    ) -> None:
        self.source = resolve_source(path_or_id, revision)
        check_max_length(max_length, None, self.source.spec)  # 0 or -1: before loading anything
        self.precision = normalize_precision(precision)
        self.batch_size = int(batch_size)
        self.instruction_template = check_instruction_template(instruction_template)
        self.use_model_prompts = use_model_prompts
        self.trust_remote_code = trust_remote_code
        self.device = default_device(device)
        check_remote_code(self.source, bool(trust_remote_code), f"model {self.source.spec!r}")
        spec = str(self.source.local_dir or self.source.spec)
        from sentence_transformers import SentenceTransformer  # after the checks: a bad path costs no import

        with loading_errors(self.source):
            self.model = SentenceTransformer(
                spec,
                device=self.device,
                revision=revision,
                trust_remote_code=trust_remote_code,
                local_files_only=self.source.local_dir is not None,
                model_kwargs={"dtype": torch_dtype(self.precision)},
            )
        if max_length is not None:
            limit = token_limit(getattr(getattr(self.model, "transformers_model", None), "config", None))
            self.model.max_seq_length = check_max_length(max_length, limit, self.source.spec)
        self.max_length = self.model.max_seq_length
        similarity = self.model.similarity_fn_name
        if similarity not in ("cosine", "dot"):
            raise LmebError(f"model {self.source.spec!r} uses similarity {similarity!r}; lmeb supports cosine or dot")
        self.similarity: Literal["cosine", "dot"] = similarity
        self._identity = source_identity(self.source)
        self.name = name or self._identity["model"]
        self.stats = {"tokens": 0}  # tokens encoded (attention mask), recorded per subset (lmeb.engine.efficiency)

    def count_tokens(self, inputs: list[str]) -> int:
        """Tokens the model sees for ``inputs`` (truncated to ``max_seq_length``): its attention-mask sum."""
        return st_token_count(self.model, inputs)

    def encode(self, texts: list[str], kind: Kind = "query", instruction: str | None = None) -> np.ndarray:
        """float32 vectors of ``texts`` (queries get ``template.format(instruction)`` prepended)."""
        inputs = with_instruction(texts, kind, instruction, self.instruction_template)
        if not inputs:
            dim = self.model.get_embedding_dimension() or 0
            return np.zeros((0, dim), dtype=np.float32)
        prompt_name = kind if self.use_model_prompts and kind in (self.model.prompts or {}) else None
        prompt = self.model.prompts[prompt_name] if prompt_name else ""
        self.stats["tokens"] += self.count_tokens([prompt + text for text in inputs])

        def run(rows: list[int]) -> tuple[list[int], np.ndarray]:
            batch = [inputs[i] for i in rows]
            vectors = self.model.encode(batch, prompt_name=prompt_name, batch_size=len(batch),
                                        show_progress_bar=False, convert_to_numpy=True)
            return rows, np.asarray(vectors, dtype=np.float32)

        def length(i: int) -> str:
            return f"{self.count_tokens([prompt + inputs[i]])} tokens"

        out: np.ndarray | None = None
        for batch in st_batches(self.model, inputs, self.batch_size):
            for rows, vectors in run_with_backoff(batch, run, stats=self.stats, name=self.name, length=length):
                if out is None:
                    out = np.empty((len(inputs), vectors.shape[1]), dtype=np.float32)
                out[rows] = vectors
        assert out is not None  # inputs is not empty
        return check_finite(out, self.name)

    def config(self) -> dict[str, Any]:
        """Everything that changes the vectors; keys the embedding cache and goes into provenance."""
        modules = [type(module).__name__ for module in self.model]
        prompts = self.model.prompts if self.use_model_prompts else {}
        return {
            "class": "SentenceTransformerEncoder",
            "adapter_version": ADAPTER_VERSION,
            **self._identity,
            "modules": modules,
            "max_length": self.max_length,
            "precision": self.precision,
            "similarity": self.similarity,
            "instruction_template": self.instruction_template,
            "default_prompt_name": self.model.default_prompt_name,
            "model_prompts": dict(sorted(prompts.items())) if prompts else None,
            "trust_remote_code": self.trust_remote_code,
        }
