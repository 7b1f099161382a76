"""Embeddings with reuse: each unique text is encoded once per (model config, kind, instruction).

Two layers sit in front of the encoder:

- memory: every vector served while evaluating one dataset, so a corpus shared by several subsets (or
  the same query in two subsets) is encoded once; ``EmbeddingStore.new_scope()`` drops it between
  datasets to bound RAM.
- disk (``DiskCache``): append-only shards per namespace, ``<cache>/embeddings/<namespace>/`` holding
  ``<shard>.npy`` (float32 rows) and ``<shard>.keys.npy`` (one 16-byte text digest per row) plus
  ``meta.json``. The namespace is a hash of (``encoder.config()``, kind, instruction), so anything that
  changes the vectors changes the key. Shards are written atomically (temporary file + rename; the keys
  file last, so a shard without keys is ignored), read memory-mapped and indexed in memory. A kill
  never corrupts the cache; at worst the last unflushed rows are encoded again next time.

``encode_texts`` (texts -> vectors) is a side-effect-free function over plain lists and arrays, so
encoding can later be spread over workers; ``EmbeddingStore`` only decides what needs encoding.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from lmeb.errors import LmebError
from lmeb.files import atomic_path, atomic_write_json

DIGEST_SIZE = 16
ENCODE_CHUNK = 1024  # texts per encoder call (progress granularity)
FLUSH_ROWS = 16384  # rows buffered before a shard is written
COMPACT_SHARDS = 64  # a namespace with more shards than this is merged into one when opened


def default_cache_dir() -> Path:
    """``$LMEB_CACHE`` if set, else ``~/.cache/lmeb``."""
    return Path(os.environ.get("LMEB_CACHE") or Path.home() / ".cache" / "lmeb").expanduser()


def text_digest(text: str) -> bytes:
    """A 16-byte content hash of one text (blake2b): the cache key of its vector."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=DIGEST_SIZE).digest()


def config_hash(config: dict[str, Any]) -> str:
    """A stable hash of an encoder configuration (canonical JSON)."""
    blob = json.dumps(config, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def namespace_key(config: dict[str, Any], kind: str, instruction: str | None) -> str:
    """The cache namespace of vectors made by one encoder config for one kind and instruction."""
    blob = json.dumps({"config": config_hash(config), "kind": kind, "instruction": instruction}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def encode_texts(encoder: Any, texts: list[str], kind: str, instruction: str | None = None) -> np.ndarray:
    """``encoder.encode`` checked: a C-contiguous float32 array with one row per text."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = np.ascontiguousarray(np.asarray(encoder.encode(list(texts), kind=kind, instruction=instruction),
                                              dtype=np.float32))
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise LmebError(f"model {getattr(encoder, 'name', encoder)!r} returned vectors of shape {vectors.shape} "
                        f"for {len(texts)} texts")
    return vectors


@dataclass
class EmbedStats:
    """Counts of texts asked for and where their vectors came from (each unique text counted once per call)."""

    requested: int = 0  # texts asked for, duplicates included
    encoded: int = 0  # unique texts run through the model
    memory: int = 0  # unique texts served from this dataset's memory
    disk: int = 0  # unique texts served from the on-disk cache

    @property
    def cached(self) -> int:
        return self.memory + self.disk

    def copy(self) -> EmbedStats:
        return EmbedStats(**{f.name: getattr(self, f.name) for f in fields(self)})

    def __sub__(self, other: EmbedStats) -> EmbedStats:
        return EmbedStats(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    def __add__(self, other: EmbedStats) -> EmbedStats:
        return EmbedStats(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_dict(self) -> dict[str, int]:
        return {"texts": self.requested, "encoded": self.encoded, "cached": self.cached,
                "cached_memory": self.memory, "cached_disk": self.disk}

    @classmethod
    def from_dict(cls, d: dict[str, int]) -> EmbedStats:
        """The inverse of ``as_dict`` (results files store the counts that way)."""
        return cls(d.get("texts", 0), d.get("encoded", 0), d.get("cached_memory", 0), d.get("cached_disk", 0))


class VectorTable:
    """Rows of vectors in chunks (arrays or memory maps) with a digest -> row index."""

    def __init__(self) -> None:
        self.index: dict[bytes, int] = {}
        self.chunks: list[np.ndarray] = []
        self.starts: list[int] = []
        self.size = 0

    def add(self, keys: list[bytes], vectors: np.ndarray) -> None:
        if not keys:
            return
        if len(keys) != len(vectors):
            raise ValueError("keys and vectors differ in length")
        self.starts.append(self.size)
        self.chunks.append(vectors)
        for offset, key in enumerate(keys):
            self.index.setdefault(key, self.size + offset)
        self.size += len(keys)

    def gather(self, rows: np.ndarray, dim: int) -> np.ndarray:
        """The vectors at global ``rows`` (a fresh float32 array)."""
        out = np.empty((len(rows), dim), dtype=np.float32)
        if not len(rows):
            return out
        starts = np.asarray(self.starts)
        chunk_of = np.searchsorted(starts, rows, side="right") - 1
        for c in np.unique(chunk_of):
            mask = chunk_of == c
            out[mask] = self.chunks[c][rows[mask] - starts[c]]
        return out

    def whole_chunk(self, rows: np.ndarray) -> np.ndarray | None:
        """The chunk itself when ``rows`` are exactly all its rows in order (no copy), else None."""
        if not len(rows):
            return None
        c = int(np.searchsorted(np.asarray(self.starts), rows[0], side="right") - 1)
        chunk = self.chunks[c]
        if len(rows) == len(chunk) and rows[0] == self.starts[c] and np.array_equal(
                rows, np.arange(self.starts[c], self.starts[c] + len(chunk))):
            return chunk
        return None

    @property
    def dim(self) -> int | None:
        return self.chunks[0].shape[1] if self.chunks else None


def _atomic_save(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


class DiskCache:
    """Append-only, memory-mapped vector shards under ``<root>/embeddings/<namespace>/``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser() / "embeddings"
        self._tables: dict[str, VectorTable] = {}

    def _dir(self, namespace: str) -> Path:
        return self.root / namespace

    def table(self, namespace: str) -> VectorTable:
        """The namespace's shards, indexed (loaded once per process; small shards merged when too many)."""
        if namespace not in self._tables:
            shards = self._read_shards(namespace)
            small = [s for s in shards if len(s[2]) < FLUSH_ROWS]
            if len(small) > COMPACT_SHARDS:
                shards = [s for s in shards if len(s[2]) >= FLUSH_ROWS] + [self._merge(namespace, small)]
            table = VectorTable()
            for _, _, vectors, keys in shards:
                if table.dim is None or vectors.shape[1] == table.dim:
                    table.add([k.tobytes() for k in keys], vectors)
            self._tables[namespace] = table
        return self._tables[namespace]

    def _read_shards(self, namespace: str) -> list[tuple[Path, Path, np.ndarray, np.ndarray]]:
        """Complete shards (vectors memory-mapped, keys read); unreadable or inconsistent ones are ignored."""
        folder = self._dir(namespace)
        if not folder.is_dir():
            return []
        out = []
        for keys_path in sorted(folder.glob("*.keys.npy")):
            vec_path = keys_path.with_name(keys_path.name[: -len(".keys.npy")] + ".npy")
            try:
                vectors = np.load(vec_path, mmap_mode="r")
                keys = np.load(keys_path)
            except (OSError, ValueError):
                continue  # e.g. a disk-full write: its texts are simply encoded again
            if vectors.ndim == 2 and keys.shape == (len(vectors), DIGEST_SIZE):
                out.append((vec_path, keys_path, vectors, keys))
        return out

    def _merge(self, namespace: str, shards: list) -> tuple[Path, Path, np.ndarray, np.ndarray]:
        """Write ``shards`` as one new shard, then delete them (a kill in between only leaves duplicates)."""
        dim = shards[0][2].shape[1]
        shards = [s for s in shards if s[2].shape[1] == dim]
        vectors = np.concatenate([np.asarray(s[2]) for s in shards])
        keys = np.concatenate([s[3] for s in shards])
        vec_path, keys_path = self._write_shard(namespace, [k.tobytes() for k in keys], vectors)
        for old_vec, old_keys, _, _ in shards:  # keys first: a shard without keys is ignored
            with contextlib.suppress(FileNotFoundError):
                old_keys.unlink()
            with contextlib.suppress(FileNotFoundError):
                old_vec.unlink()
        return vec_path, keys_path, np.load(vec_path, mmap_mode="r"), keys

    def _write_shard(self, namespace: str, keys: list[bytes], vectors: np.ndarray) -> tuple[Path, Path]:
        folder = self._dir(namespace)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex}"
        vec_path, keys_path = folder / f"{name}.npy", folder / f"{name}.keys.npy"
        _atomic_save(vec_path, np.ascontiguousarray(vectors, dtype=np.float32))
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), DIGEST_SIZE)
        _atomic_save(keys_path, key_array)
        return vec_path, keys_path

    def append(self, namespace: str, keys: list[bytes], vectors: np.ndarray, meta: dict[str, Any]) -> None:
        """Add rows as a new shard (atomically) and to the in-process index."""
        if not keys:
            return
        table = self.table(namespace)
        meta_path = self._dir(namespace) / "meta.json"
        vec_path, _ = self._write_shard(namespace, keys, vectors)
        if not meta_path.is_file():
            atomic_write_json(meta_path, meta)
        table.add(keys, np.load(vec_path, mmap_mode="r"))


class EmbeddingStore:
    """Vectors for texts, encoding only what neither this dataset's memory nor the disk cache holds."""

    def __init__(self, encoder: Any, cache_dir: Path | None = None,
                 progress: Callable[..., Any] | None = None) -> None:
        self.encoder = encoder
        self.config = dict(encoder.config())
        self.disk = DiskCache(cache_dir) if cache_dir is not None else None
        self.progress = progress  # a tqdm-like factory: progress(total=, desc=, unit=) -> bar with update()
        self.stats = EmbedStats()
        self._memory: dict[str, VectorTable] = {}

    def new_scope(self) -> None:
        """Forget in-memory vectors (call when moving to the next dataset); the disk cache stays."""
        self._memory.clear()

    def embed(self, texts: list[str], kind: str, instruction: str | None = None) -> np.ndarray:
        """float32 ``(len(texts), dim)``: one row per text, each unique text encoded at most once."""
        namespace = namespace_key(self.config, kind, instruction)
        digests = [text_digest(t) for t in texts]
        position: dict[bytes, int] = {}
        first_text: list[str] = []
        for digest, text in zip(digests, texts, strict=True):
            if digest not in position:
                position[digest] = len(first_text)
                first_text.append(text)
        keys = list(position)
        self.stats.requested += len(texts)
        memory = self._memory.setdefault(namespace, VectorTable())
        mem_rows = np.array([memory.index.get(k, -1) for k in keys], dtype=np.int64)
        missing = np.flatnonzero(mem_rows < 0)
        self.stats.memory += len(keys) - len(missing)
        if not len(missing):
            unique = memory.whole_chunk(mem_rows)
            if unique is None:
                unique = memory.gather(mem_rows, memory.dim or 0)
            return self._expand(unique, digests, position, len(keys))

        disk_table = self.disk.table(namespace) if self.disk is not None else None
        disk_rows = np.array([disk_table.index.get(keys[i], -1) if disk_table else -1 for i in missing],
                             dtype=np.int64)
        from_disk = missing[disk_rows >= 0]
        to_encode = missing[disk_rows < 0]
        self.stats.disk += len(from_disk)
        parts: list[tuple[np.ndarray, np.ndarray]] = []  # (unique positions, vectors)
        if len(from_disk):
            parts.append((from_disk, disk_table.gather(disk_rows[disk_rows >= 0], disk_table.dim or 0)))  # type: ignore[union-attr]
        if len(to_encode):
            parts.append((to_encode, self._encode_missing(namespace, kind, instruction,
                                                          [keys[i] for i in to_encode],
                                                          [first_text[i] for i in to_encode])))
        dim = parts[0][1].shape[1]
        if len(missing) == len(keys) and len(parts) == 1 and np.array_equal(parts[0][0], np.arange(len(keys))):
            unique = parts[0][1]
        else:
            unique = np.empty((len(keys), dim), dtype=np.float32)
            for pos, vectors in parts:
                unique[pos] = vectors
            have = np.flatnonzero(mem_rows >= 0)
            if len(have):
                unique[have] = memory.gather(mem_rows[have], dim)
        new = unique if len(missing) == len(keys) else unique[missing]
        new.flags.writeable = False  # shared with later callers: nobody may change it in place
        memory.add([keys[i] for i in missing], new)
        return self._expand(unique, digests, position, len(keys))

    @staticmethod
    def _expand(unique: np.ndarray, digests: list[bytes], position: dict[bytes, int], n_unique: int) -> np.ndarray:
        if len(digests) == n_unique:
            return unique  # texts were unique and in first-seen order
        return unique[np.fromiter((position[d] for d in digests), dtype=np.int64, count=len(digests))]

    def _encode_missing(self, namespace: str, kind: str, instruction: str | None,
                        keys: list[bytes], texts: list[str]) -> np.ndarray:
        """Encode in chunks, flushing each ``FLUSH_ROWS`` rows to the disk cache as they are done."""
        desc = "encode " + ("queries" if kind == "query" else "documents")
        bar = self.progress(total=len(texts), desc=desc, unit="text") if self.progress else None
        meta = {"config": self.config, "kind": kind, "instruction": instruction}
        done: list[np.ndarray] = []
        flushed = 0
        try:
            for start in range(0, len(texts), ENCODE_CHUNK):
                chunk = texts[start: start + ENCODE_CHUNK]
                done.append(encode_texts(self.encoder, chunk, kind, instruction))
                self.stats.encoded += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
                end = start + len(chunk)
                if self.disk is not None and (end - flushed >= FLUSH_ROWS or end == len(texts)):
                    self.disk.append(namespace, keys[flushed:end], _rows(done, flushed, end), meta)
                    flushed = end
        finally:
            if bar is not None:
                bar.close()
        return done[0] if len(done) == 1 else np.concatenate(done)


def _rows(chunks: Iterable[np.ndarray], start: int, end: int) -> np.ndarray:
    """Rows ``start:end`` of the concatenation of ``chunks``."""
    out, offset = [], 0
    for c in chunks:
        lo, hi = max(start - offset, 0), min(end - offset, len(c))
        if lo < hi:
            out.append(c[lo:hi])
        offset += len(c)
    return out[0] if len(out) == 1 else np.concatenate(out)
