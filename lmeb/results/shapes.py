"""The shape a results file and its per-query sidecar must have before anything reads values from them.

A damaged or hand-edited file (``"lmeb": []``, ``"lmeb": "x"``, ``lmeb.subsets: []``,
``lmeb.model_name: 5``, a sidecar block with ``metrics: []`` or ``query_ids: "abc"``) is one
``LmebError`` naming the file and the field, so ``table``, ``compare`` and ``leaderboard`` stop in one
line and the results store redoes the dataset, instead of an AttributeError or TypeError later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmeb.errors import LmebError

_TEXT_FIELDS = ("model_name", "setting", "memory_type", "per_query_sha256")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), type(value).__name__)


def _bad(path: str | Path, field: str, value: Any, wanted: str) -> LmebError:
    return LmebError(f"{path}: {field} is {_kind(value)}, not {wanted} (a damaged or hand-edited file)")


def check_result_shapes(path: str | Path, obj: Any) -> None:
    """An error naming ``path`` and the field when the main file's parts have the wrong JSON type."""
    if not isinstance(obj, dict):
        raise _bad(path, "the file", obj, "an object")
    if not isinstance(obj.get("scores"), dict):
        raise _bad(path, "scores", obj.get("scores"), "an object")
    if "task_name" in obj and not isinstance(obj["task_name"], str):
        raise _bad(path, "task_name", obj["task_name"], "a string")
    meta = obj.get("lmeb", {})
    if not isinstance(meta, dict):
        raise _bad(path, "lmeb", meta, "an object")
    for name in _TEXT_FIELDS:
        if meta.get(name) is not None and not isinstance(meta[name], str):
            raise _bad(path, f"lmeb.{name}", meta[name], "a string")
    subsets = meta.get("subsets", {})
    if not isinstance(subsets, dict):
        raise _bad(path, "lmeb.subsets", subsets, "an object")
    for name, block in subsets.items():
        if not isinstance(block, dict):
            raise _bad(path, f"lmeb.subsets.{name}", block, "an object")


def check_sidecar_shapes(path: str | Path, blocks: Any) -> None:
    """An error naming ``path`` when the per-query sidecar's blocks have the wrong JSON types."""
    if not isinstance(blocks, dict):
        raise _bad(path, "the file", blocks, "an object")
    for name, block in blocks.items():
        if not isinstance(block, dict):
            raise _bad(path, f"block {name}", block, "an object")
        ids, metrics = block.get("query_ids", []), block.get("metrics", {})
        if not isinstance(ids, list) or not all(isinstance(q, str) for q in ids):
            raise _bad(path, f"{name}.query_ids", ids, "a list of strings")
        if not isinstance(metrics, dict) or not all(isinstance(v, list) for v in metrics.values()):
            raise _bad(path, f"{name}.metrics", metrics, "an object of lists")
        if not isinstance(block.get("unranked", []), list):
            raise _bad(path, f"{name}.unranked", block["unranked"], "a list")
