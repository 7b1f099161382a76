"""The three model protocols: an encoder embeds texts, a searcher ranks a corpus for queries, a reranker
scores pairs. ``model_type`` says which one a model follows, the one place that decides it: the engine
picks its retrieval strategy by it (``lmeb.engine.strategy``), ``lmeb.models.objects`` wraps objects by it."""

from __future__ import annotations

import string
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from lmeb.errors import LmebError

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
class Searcher(Protocol):
    """Ranks a corpus for each query itself (BM25): corpus and queries in, rankings out.

    ``candidates[i]`` restricts query ``i`` to those corpus rows (None = the whole corpus); every ranking
    follows the tie rule (score desc, doc id desc; ``lmeb.ordering.search_scores`` does it).
    """

    name: str

    def search(self, doc_ids: list[str], doc_texts: list[str], queries: list[str], k: int = 1000,
               instruction: str | None = None, candidates: list[np.ndarray | None] | None = None,
               ) -> list[dict[str, float]]:
        """One ``{doc id: score}`` per query, in rank order, at most ``k`` documents each."""
        ...

    def config(self) -> dict[str, Any]:
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


MODEL_PROTOCOLS: dict[str, tuple[type, str]] = {  # checked in this order: kind -> (protocol, its defining method)
    "encoder": (Encoder, "encode"),
    "searcher": (Searcher, "search"),
    "reranker": (Reranker, "score"),
}
_SIGNATURES = ("encode(texts, kind, instruction) (an encoder)", "search(doc_ids, doc_texts, queries, k, "
               "instruction, candidates) (a searcher)", "score(pairs, instruction) (a reranker)")


def protocol_of(model: Any) -> str | None:
    """``encoder``, ``searcher`` or ``reranker`` (the first of ``MODEL_PROTOCOLS`` whose method ``model`` has),
    ``hybrid`` for a model made of models that brings its own strategy (``retrieval()``, ``lmeb.engine.hybrid``),
    None for none of them.

    The engine needs only the protocol's one method (a user's object may lack ``name`` or ``config``, which
    ``lmeb.models.objects`` supplies), so this asks ``callable(getattr(model, method))`` rather than
    ``isinstance(model, Encoder)``, which requires every member and, from Python 3.12, ignores a wrapper's
    ``__getattr__`` delegation.
    """
    if callable(getattr(model, "retrieval", None)):
        return "hybrid"
    return next((kind for kind, (_, method) in MODEL_PROTOCOLS.items() if callable(getattr(model, method, None))),
                None)


def model_type(model: Any) -> str:
    """``protocol_of(model)``, or one error naming the methods a model needs."""
    kind = protocol_of(model)
    if kind is None:
        raise LmebError(f"{type(model).__name__} is not a model lmeb can run: it has no method "
                        f"{', '.join(_SIGNATURES[:2])} or {_SIGNATURES[2]}")
    return kind


DEFAULT_INSTRUCTION_TEMPLATE = "Instruct: {}\nQuery:"  # the official LMEB scripts' template


def check_instruction_template(template: str) -> str:
    """``template`` if it formats with the instruction in its one ``{}`` slot; else a one-line error (a
    template without ``{}`` would silently drop the instruction)."""
    hint = "use '{}' where the instruction goes, e.g. 'Instruct: {}\\nQuery:'"
    try:
        slots = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise LmebError(f"instruction template {template!r} does not format ({exc}); {hint} "
                        "and '{{'/'}}' for literal braces") from None
    if not slots:
        raise LmebError(f"instruction template {template!r} has no '{{}}': the instruction would be dropped; {hint}")
    if any(name not in ("", "0") for name in slots):
        raise LmebError(f"instruction template {template!r} names fields other than the instruction; {hint}")
    try:
        template.format("instruction")
    except (IndexError, KeyError, ValueError) as exc:
        raise LmebError(f"instruction template {template!r} does not format ({exc}); {hint}") from None
    return template


def with_instruction(
    texts: list[str], kind: Kind, instruction: str | None, template: str = DEFAULT_INSTRUCTION_TEMPLATE
) -> list[str]:
    """The texts a model actually sees: ``template.format(instruction) + query`` for queries (w/ inst.).

    Plain concatenation, exactly as the official scripts; documents and ``instruction=None`` stay as given.
    """
    if kind == "document" or instruction is None:
        return list(texts)
    prefix = template.format(instruction)
    return [prefix + text for text in texts]


def check_finite(vectors: np.ndarray, model: str) -> np.ndarray:
    """``vectors`` unchanged, or an LmebError naming the model and the first text (its index in the
    caller's list) whose vector holds NaN or infinity. Every encoder passes its output through here."""
    bad = ~np.isfinite(vectors)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(vectors), -1).any(axis=1))
        raise LmebError(
            f"model {model!r} produced a non-finite (NaN or infinite) embedding for text {int(rows[0])} "
            f"({len(rows)} of {len(vectors)} texts affected); try a higher precision (fp32/bf16)"
        )
    return vectors


def model_stats(model: Any) -> dict[str, int]:
    """A model's running counters (its optional ``stats`` dict of numbers: requests, tokens, pairs...)."""
    stats = getattr(model, "stats", None)
    if not isinstance(stats, dict):
        return {}
    return {str(k): int(v) for k, v in stats.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def stats_since(model: Any, before: dict[str, int]) -> dict[str, int]:
    """How far each of the model's counters moved since ``before`` (an earlier ``model_stats``)."""
    return {k: v - before.get(k, 0) for k, v in model_stats(model).items()}
