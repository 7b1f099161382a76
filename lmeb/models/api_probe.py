"""What an embeddings API actually serves: the vector of a fixed probe text, remembered beside the cache.

An ``openai:NAME`` model is only a name and a URL: the server behind them can change its model without
changing either, and vectors of the old model would then meet vectors of the new one in the embedding
cache and in resumed results. At start the encoder asks for the vector of ``PROBE_TEXT`` and compares it
with the probe vectors seen before for the same (name, URL, options), kept in ``api_probes.json`` in the
cache folder:

* the same vector (cosine at least ``SAME``; servers are not bit-exact): the same model, its identity
  as before;
* no probe stored yet: the model seen first keeps the plain identity (no ``served`` key in its config, so
  caches and results written before probes existed stay valid);
* a vector unlike every stored one: a different model. It gets ``served`` = a digest of its probe
  vector in its config (a new cache namespace, results not resumed across it) and one warning line.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lmeb.digest import json_digest
from lmeb.errors import LmebWarning
from lmeb.files import atomic_write_json
from lmeb.json_read import read_json_or

PROBE_TEXT = "lmeb identity probe: which embedding model is answering under this name?"
SAME = 0.9999  # cosine of two probe vectors of one model (float noise of batched GPU inference is far smaller)
STORE_NAME = "api_probes.json"


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return norm > 0 and float(a @ b) / norm >= SAME


def served_identity(base: dict[str, Any], vector: np.ndarray, cache_dir: Path, where: str) -> str | None:
    """The ``served`` id of the model whose probe vector is ``vector`` (None: the first model seen under
    ``base``), remembering a new vector in ``cache_dir``; warns once when the server changed its model."""
    path = Path(cache_dir) / STORE_NAME
    store = read_json_or(path)
    store = store if isinstance(store, dict) else {}
    key = json_digest(base)
    entries = [e for e in store.get(key, []) if isinstance(e, dict) and isinstance(e.get("vector"), list)]
    vector = np.asarray(vector, dtype=np.float64).ravel()
    for entry in entries:
        if _same(np.asarray(entry["vector"], dtype=np.float64), vector):
            return entry.get("served")
    served = json_digest([round(float(x), 4) for x in vector])[:16] if entries else None
    store[key] = [*entries, {"served": served, "vector": vector.tolist()}]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, store)
    except OSError:
        pass  # a read-only cache: the next run probes and compares again
    if entries:
        warnings.warn(f"{where} answers the probe text with another vector than before: a different model is served "
                      f"under this name, so it gets its own cache namespace (served {served}) and old results are "
                      "not resumed", LmebWarning, stacklevel=3)
    return served
