"""The checksum written beside each embedding-cache shard: what lets a shard outside the index be trusted.

``index.json`` lists each shard with the checksums of its two files (``lmeb.embeddings.disk_cache``). A shard
the index does not list (a run killed between writing the shard and indexing it, or an index that was
lost or deleted) used to be adopted with a fresh checksum of whatever its files held, so a damaged shard
came back as good. Each shard now has ``<name>.sum.json`` beside it, written right after its two files
and before the index update, with the same entry the index gets (rows, dimension, both checksums). A
shard outside the index is adopted only when that file exists and matches its files. Otherwise it is
not trusted and, when repairing, deleted (its texts are encoded again): a mismatch is damage (``lmeb cache
verify`` reports it), a missing checksum an unfinished write (a run killed before writing it).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from lmeb.errors import LmebError
from lmeb.files import atomic_write_json
from lmeb.json_read import read_json

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


def untrusted(folder: Path, name: str, entry: dict[str, Any]) -> tuple[str, bool] | None:
    """Why a shard outside the index, whose files give ``entry``, must not be adopted, and whether it is
    damaged (its checksum says otherwise) rather than unfinished (no checksum: a run stopped before writing
    it, or a shard of an older lmeb whose index was lost); None: it may be adopted."""
    path = sum_path(folder, name)
    try:
        recorded = read_json(path)
    except FileNotFoundError:
        return (f"{Path(folder) / name}.npy: not in the index and no checksum beside it ({path.name}): not trusted, "
                "deleted"), False
    except (OSError, LmebError) as exc:
        return f"{path}: unreadable shard checksum ({type(exc).__name__}): not trusted", True
    if not isinstance(recorded, dict) or any(recorded.get(k) != entry.get(k) for k in ("rows", "dim", "vectors",
                                                                                         "keys")):
        return (f"{Path(folder) / name}.npy: does not match the checksum beside it (the cache file was changed "
                "or damaged)"), True
    return None
