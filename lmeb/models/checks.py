"""What a user's model object returns, checked once where the engine first receives it.

An ``Encoder`` must return an ``(n, dim)`` array of finite numbers (numpy, a list of equal-length lists, or
a torch tensor: ``requires_grad`` and bf16 tensors are converted, not refused); a ``Searcher`` one dict per
query mapping string document ids to finite numbers; ``config()`` a dict. Anything else (strings, ragged
lists, ``(n, 0)`` arrays, NaN, a set, None, int ids, string scores) is one ``LmebError`` naming the model,
the method and what it returned, before anything reaches the disk cache or the metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lmeb.errors import LmebError
from lmeb.models.base import check_finite


def describe(value: Any) -> str:
    """A short phrase for what a method returned (its type, and a shape or length where it has one)."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"a {type(value).__name__} of shape {tuple(shape)}"
    if isinstance(value, (str, bytes)):
        return f"a {type(value).__name__} ({value[:20]!r})"
    if isinstance(value, (list, tuple, set, dict)):
        return f"a {type(value).__name__} of {len(value)} items"
    return "None" if value is None else f"a {type(value).__name__}"


def from_torch(value: Any) -> Any:
    """A torch tensor as a float32 numpy array (detached from autograd, bf16/fp16 upcast, on the CPU)."""
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        return value.detach().float().cpu().numpy()
    return value


def as_vectors(value: Any, n: int, model: str) -> np.ndarray:
    """``encode``'s output as a C-contiguous float32 ``(n, dim)`` array of finite numbers, or one error."""
    value = from_torch(value)
    problem = None
    if value is None or isinstance(value, (str, bytes, set, dict)):
        problem = describe(value)
    else:
        try:
            raw = np.asarray(value)
        except (TypeError, ValueError):  # ragged lists
            raw = None
        if raw is None or raw.dtype.kind not in "fiu":
            problem = describe(value) + (", not numbers of one length (ragged, or strings)" if raw is None or
                                         raw.dtype.kind in "OUS" else f" of {raw.dtype}")
        elif raw.ndim != 2 or raw.shape[0] != n or raw.shape[1] == 0:
            problem = f"vectors of shape {raw.shape} for {n} texts"
    if problem is not None:
        raise LmebError(f"model {model!r}: encode returned {problem}; it must return an (n_texts, dim) array of "
                        "numbers")
    return check_finite(np.ascontiguousarray(raw, dtype=np.float32), model)


_SCORE_TYPES = {float, int, np.float16, np.float32, np.float64, np.int32, np.int64}


def check_rankings(rankings: Any, n: int, name: str) -> list[dict[str, float]]:
    """A ``Searcher``'s ``search`` output: ``n`` dicts of string doc id -> finite number, or one error."""
    where = f"searcher {name!r}: search returned"
    if not isinstance(rankings, Sequence) or isinstance(rankings, (str, bytes)):
        raise LmebError(f"{where} {describe(rankings)}; it must return a list of one dict per query")
    if len(rankings) != n:
        raise LmebError(f"{where} {len(rankings)} rankings for {n} queries")
    for i, ranking in enumerate(rankings):
        if not isinstance(ranking, Mapping):
            raise LmebError(f"{where} {describe(ranking)} for query {i}; each ranking must be a dict doc id -> score")
        if set(map(type, ranking)) <= {str} and set(map(type, ranking.values())) <= _SCORE_TYPES and \
                np.isfinite(np.fromiter(ranking.values(), dtype=np.float64, count=len(ranking))).all():
            continue  # the usual case, checked at C speed; the loop below finds and names the offender
        for doc_id, score in ranking.items():
            if not isinstance(doc_id, str):
                raise LmebError(f"{where} a document id of type {type(doc_id).__name__} ({doc_id!r}) for query {i}; "
                                "ids must be the corpus's strings")
            if isinstance(score, bool) or not isinstance(score, (int, float, np.integer, np.floating)):
                raise LmebError(f"{where} a score of type {type(score).__name__} ({score!r:.20}) for query {i}, "
                                f"document {doc_id!r}; scores must be numbers")
            if not math.isfinite(score):
                raise LmebError(f"{where} a non-finite score ({score}) for query {i}, document {doc_id!r}")
    return list(rankings)


def check_config(config: Any, name: str) -> dict[str, Any]:
    """``config()``'s value as a dict, or one error naming the object and what it returned."""
    if not isinstance(config, Mapping):
        raise LmebError(f"{name}.config() returned {describe(config)}; it must return a dict of what changes "
                        "its output (it keys the cache and the results)")
    return dict(config)
