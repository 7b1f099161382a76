"""What the KaLM reranker's model is given and set with: the decoder prompt, Matryoshka embedding pooling
of the passage states (MEP), and ``KalmOptions`` (``lmeb.models.kalm.KalmReranker`` runs the model)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lmeb.errors import LmebError

if TYPE_CHECKING:
    import torch

DEFAULT_INSTRUCTION = "Given a query, retrieve documents that answer the query."
DEFAULT_SYSTEM_INSTRUCTION = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct provided. "
    'Note that the answer can only be "yes" or "no".'
)
DOCUMENT_PREFIX = "<Document>: "


def decoder_prompt(system_instruction: str, instruction: str, query: str) -> str:
    """The decoder's input text (the query already truncated); the tokenizer adds no special tokens."""
    return (
        f"<bos><start_of_turn>user\n{system_instruction}\n\n<Instruct>: {instruction}\n"
        f"<Query>: {query}<end_of_turn>\n<start_of_turn>model\n\n\n\n"
    )


def mep_pool(hidden: torch.Tensor, mask: torch.Tensor, chunk_size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Matryoshka embedding pooling: mean of each chunk of ``chunk_size`` tokens over its real tokens.

    ``hidden`` (batch, seq, dim), ``mask`` (batch, seq) with 1 for real tokens. The sequence is
    right-padded to a multiple of ``chunk_size``; a partial chunk is divided by its real-token count;
    a chunk with no real token is zero with mask 0. ``None`` returns the inputs unchanged.
    """
    import torch.nn.functional as F

    if chunk_size is None:
        return hidden, mask
    batch, length, dim = hidden.shape
    chunks = -(-length // chunk_size)
    pad = chunks * chunk_size - length
    if pad:
        hidden = F.pad(hidden, (0, 0, 0, pad))
        mask = F.pad(mask, (0, pad))
    chunk_mask = mask.view(batch, chunks, chunk_size)
    summed = (hidden.view(batch, chunks, chunk_size, dim) * chunk_mask.unsqueeze(-1).to(hidden.dtype)).sum(dim=2)
    counts = chunk_mask.sum(dim=2)
    pooled = summed / counts.clamp(min=1).unsqueeze(-1).to(hidden.dtype)
    return pooled, (counts > 0).to(mask.dtype)


@dataclass(frozen=True)
class KalmOptions:
    """What ``KalmReranker`` takes besides the model (the spellings of ``load_model("kalm:PATH", ...)``);
    checked here, before any weights load. ``precision`` (lmeb's CLI name) is an alias of ``dtype``."""

    chunk_size: int | None = 4
    max_length: int = 1024
    query_max_length: int = 512
    system_instruction: str = DEFAULT_SYSTEM_INSTRUCTION
    batch_size: int = 32
    device: str | None = None
    dtype: str | None = None
    cache_dir: str | Path | None = None
    cache_max_bytes: int = 2 * 1024**3
    instruction: str = DEFAULT_INSTRUCTION
    precision: str | None = None
    revision: str | None = None
    name: str | None = None
    share_passages: bool = True
    progress: bool = False

    def __post_init__(self) -> None:
        if self.chunk_size is not None and (not isinstance(self.chunk_size, int) or self.chunk_size <= 0):
            raise LmebError(f"chunk_size must be a positive integer or None, got {self.chunk_size!r}")
        if self.max_length <= 0 or self.query_max_length <= 0 or self.batch_size <= 0:
            raise LmebError("max_length, query_max_length and batch_size must be positive")
