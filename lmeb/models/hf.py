"""A raw ``transformers`` encoder reproducing the official LMEB embedding wrapper.

``AutoTokenizer`` + ``AutoModel``; pooling ``first`` (CLS: the first real token), ``last`` (the last real
token, right for left and right padding) or ``mean`` (masked); optional Dense projections read from the
model's sentence-transformers ``modules.json`` (EmbeddingGemma); optional L2 normalisation. Texts are
encoded longest first in batches of similar token length (less padding), and returned in the caller's
order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lmeb.errors import LmebError
from lmeb.json_read import read_json_or
from lmeb.models.base import (
    DEFAULT_INSTRUCTION_TEMPLATE,
    Kind,
    check_finite,
    check_instruction_template,
    with_instruction,
)
from lmeb.models.loading import (
    ModelSource,
    check_max_length,
    check_remote_code,
    default_device,
    loading_errors,
    normalize_precision,
    options_of,
    resolve_source,
    source_identity,
    token_limit,
    torch_dtype,
)
from lmeb.models.oom import run_with_backoff

ADAPTER_VERSION = 1  # bump when this adapter changes the vectors it returns (it keys the embedding cache)
POOLINGS = ("first", "last", "mean")
PADDING_SIDES = ("left", "right")
_CHUNK_BATCHES = 16  # texts tokenized at once = this many batches; sorted by token length inside a chunk


def pool_first(hidden: Any, mask: Any) -> Any:
    """The first real token's state (CLS); with left padding that is the first unmasked position."""
    import torch

    index = mask.to(torch.long).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


def pool_last(hidden: Any, mask: Any) -> Any:
    """The last real token's state, for left and right padding alike."""
    import torch

    width = mask.shape[1]
    index = width - 1 - mask.to(torch.long).flip(dims=[1]).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


def pool_mean(hidden: Any, mask: Any) -> Any:
    """The mean of the real tokens' states."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


def pool(hidden: Any, mask: Any, method: str) -> Any:
    """``hidden`` (batch, tokens, dim) -> (batch, dim) by ``first``, ``last`` or ``mean``."""
    table = {"first": pool_first, "last": pool_last, "mean": pool_mean}
    if method not in table:
        raise LmebError(f"unknown pooling {method!r}; choose one of {', '.join(POOLINGS)}")
    return table[method](hidden, mask)


def pad_batch(features: list[list[int]], keys: dict[str, list[list[int]]], pad_id: int, side: str) -> dict[str, Any]:
    """Token lists -> padded ``input_ids``/``attention_mask`` (+ other tokenizer outputs) on ``side``."""
    import torch

    width = max(1, max(len(f) for f in features))  # a batch of empty texts still gets one (masked) column
    batch = {"input_ids": torch.full((len(features), width), pad_id, dtype=torch.long)}
    batch["attention_mask"] = torch.zeros((len(features), width), dtype=torch.long)
    for name in keys:
        batch[name] = torch.zeros((len(features), width), dtype=torch.long)
    for row, ids in enumerate(features):
        cols = slice(width - len(ids), width) if side == "left" else slice(0, len(ids))
        batch["input_ids"][row, cols] = torch.tensor(ids, dtype=torch.long)
        batch["attention_mask"][row, cols] = 1
        for name, values in keys.items():
            batch[name][row, cols] = torch.tensor(values[row], dtype=torch.long)
    return batch


def batches(lengths: list[int], batch_size: int, max_tokens: int | None = None) -> list[range]:
    """Batches (ranges of positions) over token ``lengths`` sorted longest first: ``batch_size`` texts
    each, or with ``max_tokens`` as many as fit ``count x longest <= max_tokens`` padded tokens (at
    least one), so short texts go in large batches and long ones in small batches."""
    if not max_tokens:
        return [range(b, min(b + batch_size, len(lengths))) for b in range(0, len(lengths), batch_size)]
    out, start = [], 0
    while start < len(lengths):
        longest = max(1, lengths[start])
        end = min(len(lengths), start + max(1, max_tokens // longest))
        out.append(range(start, end))
        start = end
    return out


def _token_length(ids: list[list[int]], j: int) -> str:
    """Text ``j``'s length for the out-of-memory error."""
    return f"{len(ids[j])} tokens"


def _dense_modules(source: ModelSource, revision: str | None, trust_remote_code: bool) -> list[Any]:
    """The sentence-transformers Dense layers listed in the model's ``modules.json``, in order."""
    from sentence_transformers.base.modules.dense import Dense

    spec = str(source.local_dir or source.spec)
    if source.local_dir is not None:
        modules_file = source.local_dir / "modules.json"
        if not modules_file.is_file():
            raise LmebError(f"{modules_file}: not found (dense_layers needs the model's modules.json)")
        listing = json.loads(modules_file.read_text(encoding="utf-8"))
    else:
        from huggingface_hub import hf_hub_download

        listing = json.loads(Path(hf_hub_download(spec, "modules.json", revision=revision)).read_text("utf-8"))
    layers = []
    for entry in sorted(listing, key=lambda e: e.get("idx", 0)):
        if str(entry.get("type", "")).rsplit(".", 1)[-1] == "Dense":
            layers.append(
                Dense.load(
                    spec,
                    subfolder=entry["path"],
                    revision=revision,
                    local_files_only=source.local_dir is not None,
                    trust_remote_code=trust_remote_code,
                )
            )
    if not layers:
        raise LmebError(f"model {source.spec!r}: dense_layers set but modules.json lists no Dense module")
    return layers


def st_max_seq_length(local_dir: Path | None) -> int | None:
    """``max_seq_length`` of a checkpoint's ``sentence_bert_config.json`` (None without a readable one)."""
    config = read_json_or(Path(local_dir) / "sentence_bert_config.json") if local_dir else None
    value = config.get("max_seq_length") if isinstance(config, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class HFOptions:
    """What ``HFEncoder`` takes besides the model, spelled as ``load_model("hf:PATH", ...)`` and the CLI flags
    spell it (see ``HFEncoder``); checked here, before any weights load."""

    pooling: str = "mean"
    normalize: bool = True
    max_length: int | None = None
    padding_side: str = "right"
    precision: str = "fp32"
    trust_remote_code: bool = False
    attn_implementation: str | None = None
    batch_size: int = 32
    max_batch_tokens: int | None = None
    device: str | None = None
    instruction_template: str = DEFAULT_INSTRUCTION_TEMPLATE
    revision: str | None = None
    dense_layers: bool = False
    output_key: str | None = None
    forward_mask_as: str | None = None
    similarity: Literal["cosine", "dot"] = "cosine"
    name: str | None = None
    preset: str | None = None

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise LmebError(f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}")
        if self.padding_side not in PADDING_SIDES:
            raise LmebError(f"unknown padding side {self.padding_side!r}; choose left or right")
        if self.similarity not in ("cosine", "dot"):
            raise LmebError(f"unknown similarity {self.similarity!r}; choose cosine or dot")
        if self.max_batch_tokens is not None and int(self.max_batch_tokens) < 1:
            raise LmebError(f"--max-batch-tokens must be at least 1 (got {self.max_batch_tokens})")


class HFEncoder:
    """Embeds texts with a ``transformers`` model and explicit pooling, as the official LMEB scripts do.

    ``output_key`` takes that field of the model's output instead of ``last_hidden_state`` (NV-Embed-v2's
    ``sentence_embeddings``); a 2-D output is already pooled, a 3-D one is pooled with ``pooling``.
    ``forward_mask_as`` passes the attention mask a second time under that name (NV-Embed-v2's
    ``pool_mask``). ``dense_layers`` applies the Dense modules of the model's ``modules.json`` after pooling.
    ``max_batch_tokens`` replaces the fixed ``batch_size`` by a budget of padded tokens per batch
    (``batches``); it changes speed and memory, not the vectors, so it is not part of ``config()``.
    A batch that runs out of accelerator memory is halved and retried (``lmeb.models.oom``).
    """

    options_type = HFOptions  # the options it takes (lmeb.models.registry checks names against its fields)

    def __init__(self, path_or_id: str | Path, options: HFOptions | None = None, **given: Any) -> None:
        """``HFEncoder(path, HFOptions(...))`` or ``HFEncoder(path, pooling="mean", ...)`` (``HFOptions``' fields)."""
        opts: HFOptions = options_of(HFOptions, options, given, "an HF encoder")
        self.source = resolve_source(path_or_id, opts.revision)
        check_max_length(opts.max_length, None, self.source.spec)  # 0 or -1: before loading anything
        self.pooling = opts.pooling
        self.normalize = bool(opts.normalize)
        self.padding_side = opts.padding_side
        self.precision = normalize_precision(opts.precision)
        self.trust_remote_code = bool(opts.trust_remote_code)
        self.attn_implementation = opts.attn_implementation
        self.batch_size = int(opts.batch_size)
        self.max_batch_tokens = int(opts.max_batch_tokens) if opts.max_batch_tokens else None
        self.device = default_device(opts.device)
        self.instruction_template = check_instruction_template(opts.instruction_template)
        self.dense_layers = bool(opts.dense_layers)
        self.output_key = opts.output_key
        self.forward_mask_as = opts.forward_mask_as
        self.similarity: Literal["cosine", "dot"] = opts.similarity
        self.preset = opts.preset
        self.stats = {"tokens": 0}  # tokens encoded (real tokens after truncation), recorded per subset
        self._load(opts.revision)
        self.max_length = self._max_length(opts.max_length)
        self._identity = source_identity(self.source)
        self.name = opts.name or opts.preset or self._identity["model"]

    def _load(self, revision: str | None) -> None:
        """Tokenizer, model and Dense layers on ``self.device``, in eval mode; the pad id."""
        import torch
        from transformers import AutoModel, AutoTokenizer

        check_remote_code(self.source, self.trust_remote_code, f"model {self.source.spec!r}")
        spec = str(self.source.local_dir or self.source.spec)
        local_only = self.source.local_dir is not None
        trust = self.trust_remote_code
        model_kwargs: dict[str, Any] = {"dtype": torch_dtype(self.precision), "trust_remote_code": trust}
        if self.attn_implementation:
            model_kwargs["attn_implementation"] = self.attn_implementation
        with loading_errors(self.source):
            self.tokenizer = AutoTokenizer.from_pretrained(
                spec, revision=revision, trust_remote_code=trust, local_files_only=local_only
            )
            self.model = AutoModel.from_pretrained(spec, revision=revision, local_files_only=local_only, **model_kwargs)
            layers = _dense_modules(self.source, revision, trust) if self.dense_layers else []
            self.dense = [layer.to(self.device).eval() for layer in layers]
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = self.padding_side
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        self.pad_id = int(pad_id)
        self._torch = torch

    def _max_length(self, requested: int | None) -> int:
        """The requested length, else the checkpoint's own: sentence-transformers' ``max_seq_length`` where the
        checkpoint has one (what the same weights get through sentence-transformers), within the tokenizer's
        and the position embeddings' limits."""
        if requested is not None:
            return int(check_max_length(requested, token_limit(self.model.config), self.source.spec))  # type: ignore[arg-type]
        limits = [self.tokenizer.model_max_length, getattr(self.model.config, "max_position_embeddings", None),
                  st_max_seq_length(self.source.local_dir)]
        usable = [int(v) for v in limits if isinstance(v, int) and 0 < v < 1_000_000]
        return min(usable) if usable else 512

    def _tokenize(self, texts: list[str]) -> tuple[list[list[int]], dict[str, list[list[int]]]]:
        out = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=False)
        extra = {"token_type_ids": out["token_type_ids"]} if "token_type_ids" in out else {}
        return out["input_ids"], extra

    def _forward(self, batch: dict[str, Any]) -> Any:
        torch = self._torch
        batch = {k: v.to(self.device) for k, v in batch.items()}
        mask = batch["attention_mask"]
        if self.forward_mask_as:
            batch[self.forward_mask_as] = mask
        output = self.model(**batch)
        if self.output_key:
            hidden = output[self.output_key] if isinstance(output, dict) else getattr(output, self.output_key)
        else:
            hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
        hidden = hidden.to(torch.float32)
        vectors = hidden if hidden.dim() == 2 else pool(hidden, mask, self.pooling)
        for layer in self.dense:
            vectors = vectors.to(layer.linear.weight.dtype)
            vectors = layer({layer.module_input_name: vectors})[layer.module_output_name].to(torch.float32)
        if self.normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=-1)
        return vectors.cpu().numpy()

    def _forward_rows(self, ids: list[list[int]], extra: dict[str, list[list[int]]], part: list[int]
                      ) -> tuple[list[int], np.ndarray]:
        """``part`` (positions in ``ids``) padded into one batch and run: (``part``, its vectors)."""
        part_extra = {k: [v[j] for j in part] for k, v in extra.items()}
        return part, self._forward(pad_batch([ids[j] for j in part], part_extra, self.pad_id, self.padding_side))

    def encode(self, texts: list[str], kind: Kind = "query", instruction: str | None = None) -> np.ndarray:
        """float32 vectors of ``texts`` in their order (queries get ``template.format(instruction)`` first)."""
        inputs = with_instruction(texts, kind, instruction, self.instruction_template)
        out: np.ndarray | None = None
        by_chars = sorted(range(len(inputs)), key=lambda i: -len(inputs[i]))
        chunk = self.batch_size * _CHUNK_BATCHES if not self.max_batch_tokens else max(4096, self.batch_size)
        with self._torch.inference_mode():
            for start in range(0, len(by_chars), chunk):
                rows = by_chars[start : start + chunk]
                ids, extra = self._tokenize([inputs[i] for i in rows])
                self.stats["tokens"] += sum(len(x) for x in ids)
                order = sorted(range(len(rows)), key=lambda j: -len(ids[j]))
                forward = partial(self._forward_rows, ids, extra)
                for part in batches([len(ids[j]) for j in order], self.batch_size, self.max_batch_tokens):
                    done = run_with_backoff([order[j] for j in part], forward, stats=self.stats, name=self.name,
                                            length=partial(_token_length, ids))
                    for piece, vectors in done:
                        if out is None:
                            out = np.empty((len(inputs), vectors.shape[1]), dtype=np.float32)
                        out[[rows[j] for j in piece]] = vectors
        if out is None:
            return np.zeros((0, 0), dtype=np.float32)
        return check_finite(out, self.name)

    def config(self) -> dict[str, Any]:
        """Everything that changes the vectors; keys the embedding cache and goes into provenance."""
        return {
            "class": "HFEncoder",
            "adapter_version": ADAPTER_VERSION,
            **self._identity,
            "preset": self.preset,
            "pooling": self.pooling,
            "normalize": self.normalize,
            "max_length": self.max_length,
            "precision": self.precision,
            "padding_side": self.padding_side,
            "instruction_template": self.instruction_template,
            "dense_layers": self.dense_layers,
            "output_key": self.output_key,
            "forward_mask_as": self.forward_mask_as,
            "attn_implementation": self.attn_implementation,
            "trust_remote_code": self.trust_remote_code,
            "similarity": self.similarity,
        }
