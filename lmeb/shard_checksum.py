"""The checksum written beside each embedding-cache shard: what lets a shard outside the index be trusted.

``index.json`` lists each shard with the checksums of its two files (``lmeb.embedding_cache``). A shard
the index does not list (a run killed between writing the shard and indexing it, or an index that was
lost or deleted) used to be adopted with a fresh checksum of whatever its files held, so a damaged shard
came back as good. Each shard now has ``<name>.sum.json`` beside it, written right after its two files
and before the index update, with the same entry the index gets (rows, dimension, both checksums). A
shard outside the index is adopted only when that file exists and matches its files; otherwise it is
not trusted: reported (``lmeb cache verify``) and, when repairing, deleted (its texts are encoded again).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from lmeb.files import atomic_write_json

SUFFIX = ".sum.json"


def sum_path(folder: Path, name: str) -> Path:
    """Where shard ``name``'s checksum file lives."""
    return Path(folder) / f"{name}{SUFFIX}"


def write_sum(folder: Path, name: str, entry: dict[str, Any]) -> None:
    """Write the shard's index entry beside it (atomically)."""
    atomic_write_json(sum_path(folder, name), entry)


def remove_sum(folder: Path, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        sum_path(folder, name).unlink()


def untrusted(folder: Path, name: str, entry: dict[str, Any]) -> str | None:
    """Why a shard outside the index, whose files give ``entry``, must not be adopted (None: it may)."""
    path = sum_path(folder, name)
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return (f"{Path(folder) / name}.npy: not in the index and no checksum beside it ({path.name}): "
                "not trusted")
    except (OSError, ValueError) as exc:
        return f"{path}: unreadable shard checksum ({type(exc).__name__}): not trusted"
    if not isinstance(recorded, dict) or any(recorded.get(k) != entry.get(k) for k in ("rows", "dim", "vectors",
                                                                                         "keys")):
        return (f"{Path(folder) / name}.npy: does not match the checksum beside it (the cache file was changed "
                "or damaged)")
    return None
