"""The two model protocols every adapter implements: an encoder embeds texts, a reranker scores pairs."""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

Kind = Literal["query", "document"]


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into vectors. ``instruction`` applies to queries only (the w/ inst. setting)."""

    name: str
    similarity: Literal["cosine", "dot"]  # how query and document vectors are compared

    def encode(self, texts: list[str], kind: Kind = "query", instruction: str | None = None) -> np.ndarray:
        """float32 array of shape (len(texts), dim)."""
        ...

    def config(self) -> dict[str, Any]:
        """Everything that changes the vectors (model id, revision, pooling, max length, dtype, template).

        It keys the embedding cache and goes into the results' provenance.
        """
        ...


@runtime_checkable
class Reranker(Protocol):
    """Scores (query, document) pairs; higher is more relevant."""

    name: str

    def score(self, pairs: list[tuple[str, str]], instruction: str | None = None) -> np.ndarray:
        """float array of shape (len(pairs),)."""
        ...

    def config(self) -> dict[str, Any]:
        ...
