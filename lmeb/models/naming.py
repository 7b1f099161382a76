"""A model's default name, from its spec: the results folder it writes to (``results/<name>/<setting>``).

Here, in the models layer, because everything that loads models from specs names them the same way:
``lmeb.evaluate`` and the CLI (``lmeb.api``) and a hybrid naming its parts (``lmeb.engine.hybrid``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmeb.models.base import protocol_of
from lmeb.models.registry import is_bm25_spec, split_spec

RERANK_JOINER = "+rerank+"  # a retriever with a reranker is named bm25+rerank+my-reranker (folder- and shell-safe)


def default_name(spec: str | None, model: Any, preset: str | None = None) -> str:
    """bm25; a directory's name; a hub id as given (its folder becomes org__name); the preset's name."""
    if protocol_of(model) == "hybrid":
        return str(model.name)  # lmeb.engine.hybrid: a folder-safe name from its parts and fusion
    named_preset = getattr(model, "preset", None)
    if isinstance(named_preset, str) and named_preset:
        return named_preset  # a paper model: its preset name, whichever spelling (paper's, any case) chose it
    if preset and not spec:
        return preset
    if spec is None:
        return getattr(model, "name", "model")
    if is_bm25_spec(spec):
        return "bm25"  # one results folder whichever of BM25's spellings named it
    prefix, raw = split_spec(spec)
    if prefix == "preset":
        return raw
    path = Path(raw).expanduser()
    if path.is_dir():
        named = getattr(model, "name", None)
        return str(named) if named else path.resolve().name
    if raw.startswith((".", "/", "~")) or raw.count("/") > 1:
        return path.name  # a path (e.g. a file the adapter accepts): its last component
    return raw  # a hub id: org/name, written org__name
