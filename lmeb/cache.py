"""lmeb's cache folder and its layout, named once (like mteb's ``ResultCache``).

One value, ``Cache``, owns the folder a run caches into: ``embeddings/`` (the vector shards of
``lmeb.embeddings.disk_cache``) and ``kalm/`` (a KaLM reranker's pooled passage states), plus the small
files models keep at its root (``lmeb.models.api_probe``). It lives below every layer that uses it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

EMBEDDINGS = "embeddings"  # the vector shards' folder under the cache root
KALM = "kalm"  # a KaLM reranker's passage states under the cache root
DEFAULT_CACHE = "default"  # the cache folder a run gets unless told: $LMEB_CACHE or ~/.cache/lmeb (Cache.of)


def default_cache_dir() -> Path:
    """``$LMEB_CACHE`` if set, else ``~/.cache/lmeb``."""
    return Path(os.environ.get("LMEB_CACHE") or Path.home() / ".cache" / "lmeb").expanduser()


@dataclass(frozen=True)
class Cache:
    """lmeb's cache folder and its layout, named once: ``embeddings/`` (``DiskCache``'s vector shards) and
    ``kalm/`` (a KaLM reranker's pooled passage states) under ``root``. ``lmeb.evaluate(cache_dir=...)``
    builds it (``Cache.of``) and passes the value down."""

    root: Path

    @classmethod
    def default(cls) -> Cache:
        """``$LMEB_CACHE`` if set, else ``~/.cache/lmeb``."""
        return cls(default_cache_dir())

    @classmethod
    def of(cls, value: Cache | str | Path | None) -> Cache | None:
        """``value`` as a Cache: ``DEFAULT_CACHE`` gives ``Cache.default()``, None no cache, a path its Cache."""
        if value is None or isinstance(value, Cache):
            return value
        if isinstance(value, str) and value == DEFAULT_CACHE:
            return cls.default()
        return cls(Path(value).expanduser())

    @property
    def embeddings(self) -> Path:
        """The embedding shards' folder (``lmeb.embeddings.disk_cache.DiskCache``)."""
        return self.root / EMBEDDINGS

    @property
    def kalm(self) -> Path:
        """A KaLM reranker's passage-state cache (``lmeb.models.registry.load_reranker``)."""
        return self.root / KALM
