"""KaLM reranker passage caches: pooled encoder states per unique passage, in RAM (LRU bounded in bytes)
and on disk (one safetensors file per passage), so the encoder runs once per passage (``lmeb.models.kalm``)."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmeb.digest import text_digest
from lmeb.files import atomic_path, atomic_write_text

if TYPE_CHECKING:
    import torch


def text_key(text: str) -> str:
    """A passage's cache key: a 128-bit BLAKE2b hash of its UTF-8 text."""
    return text_digest(text).hex()


class PassageCache:
    """Pooled passage states in RAM, least recently used evicted first, bounded by ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self.nbytes = 0
        self._items: OrderedDict[str, torch.Tensor] = OrderedDict()

    def get(self, key: str) -> torch.Tensor | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: str, value: torch.Tensor) -> None:
        size = value.element_size() * value.nelement()
        if size > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.nbytes -= old.element_size() * old.nelement()
        self._items[key] = value
        self.nbytes += size
        while self.nbytes > self.max_bytes:
            _, dropped = self._items.popitem(last=False)
            self.nbytes -= dropped.element_size() * dropped.nelement()

    def __len__(self) -> int:
        return len(self._items)


class DiskPassageCache:
    """Pooled passage states on disk, one safetensors file per passage, written atomically.

    ``folder`` is specific to one model identity, chunk size and max length (see ``KalmReranker``);
    files are ``<folder>/<key[:2]>/<key>.safetensors``. A corrupt or unreadable file is a miss.
    """

    def __init__(self, folder: Path, identity: dict[str, Any]) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        ident = folder / "identity.json"
        if not ident.exists():
            atomic_write_text(ident, json.dumps(identity, indent=1, sort_keys=True) + "\n")

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.safetensors"

    def get(self, key: str) -> torch.Tensor | None:
        from safetensors.torch import load_file

        path = self._path(key)
        if not path.is_file():
            return None
        try:
            return load_file(str(path))["states"]
        except Exception:  # a truncated or foreign file: recompute and overwrite
            return None

    def put(self, key: str, value: torch.Tensor) -> None:
        from safetensors.torch import save_file

        with atomic_path(self._path(key)) as tmp:
            save_file({"states": value.contiguous()}, str(tmp))
