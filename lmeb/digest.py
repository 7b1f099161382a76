"""Content hashes: one rule for a text's digest (cache keys, distinct-text counts) and for a value's."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

DIGEST_SIZE = 16  # bytes of a text digest (128-bit BLAKE2b)


def text_digest(text: str) -> bytes:
    """A 16-byte BLAKE2b hash of one text's UTF-8 bytes: the key of its vector or pooled passage state."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=DIGEST_SIZE).digest()


def texts_digest(texts: Iterable[str]) -> str:
    """A hex digest of a sequence of texts (order matters): equal exactly when the texts are equal."""
    h = hashlib.blake2b(digest_size=DIGEST_SIZE)
    for text in texts:
        h.update(text_digest(text))
    return h.hexdigest()


def json_digest(obj: Any) -> str:
    """sha256 of ``obj`` as canonical JSON (sorted keys; non-JSON values by ``str``)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
