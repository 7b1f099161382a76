"""``lmeb cache info|verify|prune``: look at every namespace of an embedding cache, and repair it on request.

Kept apart from ``lmeb.embeddings.disk_cache`` (what a run reads and writes) because only the CLI needs it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from lmeb import files
from lmeb.cache import Cache
from lmeb.embeddings.disk_cache import CacheWarning, DiskCache, Scan


def namespaces(root: Path) -> list[str]:
    """The namespaces present under ``<root>/embeddings``."""
    folder = Cache(Path(root).expanduser()).embeddings
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def scan_cache(root: Path, fix: bool = False) -> list[Scan]:
    """Check every namespace of the cache at ``root``; with ``fix`` (prune) repair what is wrong."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheWarning)
        cache = DiskCache(root) if fix else _ReadOnlyCache(root)
        return [cache.scan(ns, fix=fix) for ns in namespaces(root)]


def stale_temporaries(root: Path) -> list[Path]:
    """Temporary files under the cache that a stopped run left behind."""
    return files.stale_temporaries(Cache(Path(root).expanduser()).embeddings)


class _ReadOnlyCache(DiskCache):
    """A DiskCache that looks without touching anything (``lmeb cache info|verify``)."""

    def __init__(self, root: Path) -> None:
        self.root = Cache(Path(root).expanduser()).embeddings
        self._tables = {}
        self.disabled = "read-only"
