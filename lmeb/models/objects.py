"""Python objects as lmeb models: what ``lmeb.evaluate`` accepts besides a spec string.

* an object following one of lmeb's protocols (``encode(texts, kind, instruction)``, ``search(...)``,
  ``score(pairs, instruction)``) is used as it is;
* a ``sentence_transformers.SentenceTransformer`` instance becomes an encoder (w_inst queries get the
  official template), a ``CrossEncoder`` instance a reranker;
* a plain callable ``list[str] -> array`` becomes an encoder (cosine similarity, official template).

The identity of a model keys the embedding cache and the resume rule. lmeb's own adapters describe
themselves with ``config()``; an object that does not gets ``{"class", "name", "revision"}`` from the
``name=``/``revision=`` the caller gives, and without a name it is ``anonymous``: the caller must then
turn the cache and resume off (``lmeb.evaluate`` does, with a one-line warning), because nothing would
tell two versions of the object apart.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lmeb.errors import LmebError
from lmeb.models.base import DEFAULT_INSTRUCTION_TEMPLATE, Kind, check_finite, model_type, protocol_of, with_instruction


@dataclass
class Wrapped:
    """A model ready for the engine, its identity, and whether that identity can key caches."""

    model: Any
    config: dict[str, Any]
    name: str
    anonymous: bool  # no config() and no name=: nothing tells two versions apart


def _class_name(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_instance_of(obj: Any, module: str, names: tuple[str, ...]) -> bool:
    """``isinstance`` against a class of ``module`` without importing it (it is loaded if obj is one)."""
    return any(c.__module__.split(".")[0] == module and c.__name__ in names for c in type(obj).__mro__)


class Identified:
    """A wrapper's ``config()``: the identity ``wrap_model`` gives it (class, name, revision)."""

    identity: ClassVar[dict[str, Any]] = {}  # replaced per instance by wrap_model

    def config(self) -> dict[str, Any]:
        return dict(self.identity)


class CallableEncoder(Identified):
    """A plain function ``list[str] -> array`` as an Encoder; w_inst queries get the official template."""

    similarity = "cosine"

    def __init__(self, fn: Any, name: str, template: str = DEFAULT_INSTRUCTION_TEMPLATE) -> None:
        self.fn, self.name, self.instruction_template = fn, name, template

    def encode(self, texts: list[str], kind: Kind = "query", instruction: str | None = None) -> np.ndarray:
        vectors = np.asarray(self.fn(with_instruction(texts, kind, instruction, self.instruction_template)),
                             dtype=np.float32)
        return check_finite(vectors, self.name)


class STInstanceEncoder(CallableEncoder):
    """A ``SentenceTransformer`` instance as an Encoder (its own similarity function, no progress bars)."""

    def __init__(self, model: Any, name: str, batch_size: int = 32) -> None:
        def encode(texts: list[str]) -> np.ndarray:
            from lmeb.models.sentence_transformer import st_token_count

            self.stats["tokens"] += st_token_count(model, texts)  # recorded per subset (lmeb.engine.efficiency)
            return model.encode(texts, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)

        super().__init__(encode, name)
        self.model, self.device, self.stats = model, str(model.device), {"tokens": 0}
        self.similarity = model.similarity_fn_name or "cosine"
        if self.similarity not in ("cosine", "dot"):
            raise LmebError(f"{name} uses similarity {self.similarity!r}; lmeb supports cosine or dot")


class CrossEncoderInstance(Identified):
    """A ``CrossEncoder`` instance as a Reranker (bare pairs: classic cross-encoders take no instruction)."""

    def __init__(self, model: Any, name: str, batch_size: int = 32) -> None:
        self.model, self.name, self.batch_size = model, name, batch_size

    def score(self, pairs: list[tuple[str, str]], instruction: str | None = None) -> np.ndarray:
        if not pairs:
            return np.zeros(0, dtype=np.float64)
        return np.asarray(self.model.predict(list(pairs), batch_size=self.batch_size, show_progress_bar=False,
                                             convert_to_numpy=True), dtype=np.float64).reshape(-1)


class ProtocolObject(Identified):
    """An object with ``encode``/``search``/``score`` but no ``config()``: passes calls through."""

    def __init__(self, obj: Any, name: str) -> None:
        self.obj, self.name = obj, name
        for attr in ("similarity", "uses_instructions", "encode_chunk"):
            if hasattr(obj, attr):
                setattr(self, attr, getattr(obj, attr))

    def __getattr__(self, attr: str) -> Any:
        if attr in ("encode", "search", "score", "stats"):
            return getattr(self.obj, attr)
        raise AttributeError(attr)


def _st_name(model: Any) -> str | None:
    """The model's path or hub id as sentence-transformers recorded it, when it did."""
    try:
        raw = str(model[0].auto_model.config._name_or_path)
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    return (Path(raw).name if Path(raw).is_dir() else raw) or None


def _check_encode(obj: Any) -> None:
    """An ``encode`` that cannot take (texts, kind=, instruction=) is a clear error, not a TypeError later."""
    try:
        params = inspect.signature(obj.encode).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    missing = [p for p in ("kind", "instruction") if p not in params]
    if missing:
        raise LmebError(f"{type(obj).__name__}.encode must take (texts, kind, instruction); it has no "
                        f"{' or '.join(missing)} parameter (wrap a texts-only function as a plain callable instead)")


def wrap_model(obj: Any, name: str | None = None, revision: str | None = None, role: str = "model") -> Wrapped:
    """``obj`` as an engine model with its identity (see the module docstring); a clear error otherwise."""
    own_config = False
    if _is_instance_of(obj, "sentence_transformers", ("CrossEncoder",)):
        label = name or _st_name(obj) or "cross-encoder"
        model: Any = CrossEncoderInstance(obj, label)
    elif _is_instance_of(obj, "sentence_transformers", ("SentenceTransformer",)):
        label = name or _st_name(obj) or "sentence-transformer"
        model = STInstanceEncoder(obj, label)
    elif (kind := protocol_of(obj)) is not None:
        if kind == "encoder":
            _check_encode(obj)
        label = name or str(getattr(obj, "name", None) or type(obj).__name__)
        own_config = callable(getattr(obj, "config", None))
        model = obj if own_config else ProtocolObject(obj, label)
    elif callable(obj) and not isinstance(obj, type):
        label = name or getattr(obj, "__name__", None) or type(obj).__name__
        model = CallableEncoder(obj, str(label))
    else:
        what = "reranker: it has no method score(pairs, instruction)" if role == "reranker" else (
            "model: it has no method encode(texts, kind, instruction), search(doc_ids, doc_texts, queries, ...) "
            "or score(pairs, instruction), and is not a callable list[str] -> array")
        raise LmebError(f"{type(obj).__name__} is not a {what}")
    if role == "reranker" and model_type(model) != "reranker":
        raise LmebError(f"{type(obj).__name__} is not a reranker: it has no method score(pairs, instruction)")
    if own_config:  # lmeb's own adapters and objects describing themselves: used as they are
        from lmeb.models.checks import check_config

        return Wrapped(obj, check_config(obj.config(), type(obj).__name__), label, anonymous=False)
    model.identity = {"class": _class_name(obj), "name": name, "revision": revision}
    return Wrapped(model, model.config(), model.name, anonymous=name is None)
