"""The rankings sidecar: each subset's top 100 documents per query (ids and scores), kept by default.

``lmeb inspect`` (``lmeb.inspect.queries``) needs what a model retrieved, not only its metric values; TREC run
files (``--save-runs``) hold the full top 1000 as text and are opt-in. This sidecar is small enough to
write on every run: one ``.npz`` per subset, ``<Dataset>.rankings/<subset>.npz`` beside the results file,
written atomically (``lmeb.files``) before the main file records its sha256 in the subset's provenance
(``rankings``: file, sha256, depth). A subset's file is written once, when that subset is evaluated, so
rewriting the results file after every subset never rewrites the rankings of the others.

Compact because: document ids are stored once (``doc_ids``) and the rankings as int32 rows into that
list; scores as float32 (the exact value of a dense or BM25 score; float64 only when a score is not a
float32 value); both byte-shuffled (the bytes of equal significance together) before deflate, so the
slowly varying high bytes of sorted scores compress to almost nothing.

``read_rankings`` never raises on a damaged or missing sidecar: it returns why, in one line, so
``lmeb inspect`` can say so and still show the metric values.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from lmeb.errors import LmebError
from lmeb.files import atomic_path
from lmeb.engine.retrieval import Run
from lmeb.ordering import ranking

DEPTH = 100  # documents kept per query
SUFFIX = ".rankings"


def rankings_file(main: Path, subset: str) -> tuple[Path, str]:
    """Where a subset's rankings go, and that path relative to the results folder (for provenance)."""
    path = Path(main).with_suffix(SUFFIX) / f"{subset.replace('/', '__')}.npz"
    return path, path.relative_to(Path(main).parent).as_posix()


def _shuffle(a: np.ndarray) -> np.ndarray:
    """The bytes of ``a`` grouped by significance (byte plane 0 of every value, then plane 1...)."""
    return np.ascontiguousarray(a.reshape(-1).view(np.uint8).reshape(-1, a.dtype.itemsize).T)


def _unshuffle(planes: np.ndarray, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    return np.ascontiguousarray(planes.T).view(dtype).reshape(shape)


def top_rankings(run: Run, depth: int = DEPTH) -> dict[str, list[tuple[str, float]]]:
    """query id -> its top ``depth`` (doc id, score) in rank order: what the sidecar keeps (and ``decode`` gives)."""
    return {q: ranking(docs)[:depth] for q, docs in run.items()}


def encode(run: Run, depth: int = DEPTH) -> dict[str, np.ndarray]:
    """The arrays of the sidecar for ``run`` (top ``depth`` per query in rank order)."""
    kept = top_rankings(run, depth)
    query_ids = list(kept)
    tops = list(kept.values())
    doc_ids = sorted({d for top in tops for d, _ in top})
    index = {d: i for i, d in enumerate(doc_ids)}
    width = max((len(t) for t in tops), default=0)
    rows = np.full((len(tops), width), -1, dtype=np.int32)
    scores = np.full((len(tops), width), np.nan, dtype=np.float64)
    for i, top in enumerate(tops):
        rows[i, :len(top)] = [index[d] for d, _ in top]
        scores[i, :len(top)] = [s for _, s in top]
    small = scores.astype(np.float32)
    exact = np.array_equal(small.astype(np.float64), scores, equal_nan=True)
    scores = small if exact else scores
    return {"query_ids": np.asarray(json.dumps(query_ids)), "doc_ids": np.asarray(json.dumps(doc_ids)),
            "shape": np.asarray(rows.shape, dtype=np.int64), "score_dtype": np.asarray(scores.dtype.str),
            "rows": _shuffle(rows), "scores": _shuffle(scores)}


def write_rankings(run: Run, path: Path, depth: int = DEPTH) -> str:
    """Write ``run``'s top ``depth`` per query to ``path`` atomically; returns the file's sha256.

    A failed write (a full disk) is a one-line error naming the file; the results file is not touched.
    """
    arrays = encode(run, depth)
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
            return hashlib.sha256(tmp.read_bytes()).hexdigest()
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise LmebError(f"{path}: cannot write the rankings sidecar ({reason}); the results file keeps the "
                        "subsets written before, so rerun to resume once it is writable") from None


def decode(arrays: Any) -> dict[str, list[tuple[str, float]]]:
    """query id -> [(doc id, score)] in rank order, from the sidecar's arrays."""
    query_ids = json.loads(str(arrays["query_ids"]))
    doc_ids = json.loads(str(arrays["doc_ids"]))
    shape = tuple(int(n) for n in arrays["shape"])
    rows = _unshuffle(arrays["rows"], np.dtype(np.int32), shape)
    scores = _unshuffle(arrays["scores"], np.dtype(str(arrays["score_dtype"])), shape)
    out = {}
    for i, qid in enumerate(query_ids):
        keep = rows[i] >= 0
        out[qid] = list(zip((doc_ids[r] for r in rows[i][keep]), scores[i][keep].astype(np.float64).tolist(),
                            strict=True))
    return out


def read_rankings(main: Path, provenance: dict[str, Any]) -> tuple[dict[str, list[tuple[str, float]]] | None, str]:
    """A subset's rankings (from its results file ``main`` and subset provenance), or None and why not."""
    meta = provenance.get("rankings")
    if not isinstance(meta, dict) or not isinstance(meta.get("file"), str):
        return None, f"{main}: no rankings recorded for this subset (written before lmeb kept them; rerun it)"
    path = Path(main).parent / meta["file"]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, f"{path} is missing (rerun the subset with --overwrite to write it)"
    except OSError as exc:
        return None, f"{path}: unreadable ({exc.strerror or exc.__class__.__name__})"
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        return None, f"{path}: does not match its results file (damaged or replaced); rerun with --overwrite"
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            return decode(arrays), ""
    except (ValueError, KeyError, OSError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        return None, f"{path}: malformed rankings file ({exc.__class__.__name__})"
