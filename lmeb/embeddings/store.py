"""Embeddings with reuse: each unique text is encoded once per (model config, kind, instruction).

Two layers sit in front of the encoder:

- memory: every vector served while evaluating one dataset, so a corpus shared by several subsets (or
  the same query in two subsets) is encoded once; ``EmbeddingStore.new_scope()`` drops it between
  datasets to bound RAM.
- disk (``lmeb.embeddings.disk_cache.DiskCache``): checksummed, memory-mapped shards per namespace. The
  namespace is a hash of (``encoder.config()``, kind, instruction), so anything that changes the vectors
  changes the key. A kill never corrupts the cache; at worst the last unflushed rows are encoded again.

What is still to encode is sorted by length (characters; longest first) across the whole call before it
is cut into chunks, so each encoder call gets texts of similar length (less padding), and the vectors
are put back in the caller's order. A chunk is ``encoder.encode_chunk`` texts when the encoder has that
attribute (an API encoder's request batch; then every chunk is also flushed to the disk cache), else
``ENCODE_CHUNK``, flushed every ``FLUSH_ROWS`` rows.

``encode_texts`` (texts -> vectors) is a side-effect-free function over plain lists and arrays, so
encoding can later be spread over workers; ``EmbeddingStore`` only decides what needs encoding.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from lmeb.digest import json_digest, text_digest
from lmeb.embeddings import disk_cache as embedding_cache
from lmeb.embeddings import vector_table
from lmeb.embeddings.disk_cache import DiskCache
from lmeb.embeddings.vector_table import VectorTable
from lmeb.errors import LmebError

ENCODE_CHUNK = 1024  # texts per encoder call (progress granularity) unless the encoder sets encode_chunk


def config_hash(config: dict[str, Any]) -> str:
    """A stable hash of an encoder configuration (canonical JSON)."""
    blob = json.dumps(config, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def namespace_key(config: dict[str, Any], kind: str, instruction: str | None) -> str:
    """The cache namespace of vectors made by one encoder config for one kind and instruction."""
    return json_digest({"config": config_hash(config), "kind": kind, "instruction": instruction})[:32]


def encode_texts(encoder: Any, texts: list[str], kind: str, instruction: str | None = None) -> np.ndarray:
    """``encoder.encode`` checked: a C-contiguous float32 array with one row per text."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    from lmeb.models.checks import as_vectors  # NaN, strings, ragged: refused before any disk cache write

    output = encoder.encode(list(texts), kind=kind, instruction=instruction)
    return as_vectors(output, len(texts), str(getattr(encoder, "name", type(encoder).__name__)))


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
        self._last: dict[str, tuple[list[str], np.ndarray, int]] = {}  # namespace -> (texts, vectors, unique)

    def new_scope(self) -> None:
        """Forget in-memory vectors (call when moving to the next dataset); the disk cache stays."""
        self._memory.clear()
        self._last.clear()

    def use(self, encoder: Any) -> None:
        """Encode with ``encoder`` from now on (a model's per-task encoder, see ``for_task``); its own
        ``config()`` keys memory and disk, so vectors of different tasks never mix."""
        self.encoder = encoder
        self.config = dict(encoder.config())

    def embed(self, texts: list[str], kind: str, instruction: str | None = None) -> np.ndarray:
        """float32 ``(len(texts), dim)``: one row per text, each unique text encoded at most once.

        The same texts again (a corpus shared by several subsets comes back as the same list) get the
        same read-only array without hashing every text again; they count as served from memory.
        """
        namespace = namespace_key(self.config, kind, instruction)
        last = self._last.get(namespace)
        if last is not None and last[0] == texts:  # the same list: an identity check per item, no hashing
            self.stats.requested += len(texts)
            self.stats.memory += last[2]
            return last[1]
        vectors, unique = self._embed(namespace, texts, kind, instruction)
        vectors.flags.writeable = False  # handed out again for the same texts: nobody may change it
        self._last[namespace] = (list(texts), vectors, unique)
        return vectors

    def _embed(self, namespace: str, texts: list[str], kind: str,
               instruction: str | None) -> tuple[np.ndarray, int]:
        """(vectors, number of unique texts) through the memory table, the disk cache and the encoder.

        One full-size array is ever made: every unique text's vector is encoded, or copied from memory or
        disk, straight into its first row of the output, then repeated texts copy that row. When the texts
        are unique and all in one memory chunk, that chunk itself is returned.
        """
        digests = [text_digest(t) for t in texts]
        position: dict[bytes, int] = {}
        first_row: list[int] = []  # unique text -> its first row in ``texts``
        for row, digest in enumerate(digests):
            if digest not in position:
                position[digest] = len(first_row)
                first_row.append(row)
        keys = list(position)
        n = len(texts)
        self.stats.requested += n
        memory = self._memory.setdefault(namespace, VectorTable())
        mem_rows = np.array([memory.index.get(k, -1) for k in keys], dtype=np.int64)
        missing = np.flatnonzero(mem_rows < 0)
        have = np.flatnonzero(mem_rows >= 0)
        self.stats.memory += len(have)
        if not len(missing) and len(keys) == n:
            chunk = memory.whole_chunk(mem_rows)
            if chunk is not None:
                return chunk, n
        firsts = np.asarray(first_row, dtype=np.int64)

        disk_table = self.disk.table(namespace) if self.disk is not None and len(missing) else None
        disk_rows = np.array([disk_table.index.get(keys[i], -1) if disk_table else -1 for i in missing],
                             dtype=np.int64)
        from_disk = missing[disk_rows >= 0]
        to_encode = missing[disk_rows < 0]
        self.stats.disk += len(from_disk)
        out: np.ndarray | None = None
        if len(to_encode):  # the disk table only grows meanwhile: its rows found above stay valid
            # the namespace's width wherever it has vectors, whether this call reuses any or not
            known_dim = (disk_table.dim if disk_table is not None else None) or memory.dim
            out = self._encode_missing(namespace, kind, instruction, [keys[i] for i in to_encode],
                                       [texts[r] for r in firsts[to_encode]], firsts[to_encode], n, known_dim)
        if out is None:  # nothing encoded: the width comes from where the vectors are
            source_table = disk_table if len(from_disk) and not len(have) else memory
            out = np.empty((n, source_table.dim or 0), dtype=np.float32)  # type: ignore[union-attr]
        if len(from_disk):
            disk_table.gather(disk_rows[disk_rows >= 0], out.shape[1], out, firsts[from_disk])  # type: ignore[union-attr]
        if len(have):
            memory.gather(mem_rows[have], out.shape[1], out, firsts[have])
        if len(keys) < n:  # repeated texts: copy their first row, a block at a time
            source = firsts[np.fromiter((position[d] for d in digests), dtype=np.int64, count=n)]
            repeats = np.flatnonzero(source != np.arange(n))
            for b in range(0, len(repeats), vector_table.GATHER_BLOCK):
                rows = repeats[b: b + vector_table.GATHER_BLOCK]
                out[rows] = out[source[rows]]
        out.flags.writeable = False  # shared with later callers: nobody may change it in place
        if len(missing):
            self._remember(memory, out, digests, [keys[i] for i in missing], firsts[missing])
        return out, len(keys)

    @staticmethod
    def _remember(memory: VectorTable, out: np.ndarray, digests: list[bytes], keys: list[bytes],
                  rows: np.ndarray) -> None:
        """Keep the newly served vectors (``keys``, at ``rows`` of ``out``) in this dataset's memory: ``out``
        itself when they are at least half of it (no copy), else a copy of their rows (so a call that adds
        a few texts to many known ones does not keep a whole array alive for them)."""
        if 2 * len(keys) >= len(out):
            memory.add(digests, out)  # a repeated or already known digest keeps its first row
            return
        new = out[rows]
        new.flags.writeable = False
        memory.add(keys, new)

    def _encode_missing(self, namespace: str, kind: str, instruction: str | None,
                        keys: list[bytes], texts: list[str], at: np.ndarray, n_rows: int,
                        known_dim: int | None = None) -> np.ndarray:
        """A new ``(n_rows, dim)`` array with the vector of ``texts[j]`` in row ``at[j]`` (the other rows
        are the caller's to fill). Encodes longest first in chunks, flushing finished rows to the disk
        cache as they are done."""
        desc = "encode " + ("queries" if kind == "query" else "documents")
        bar = self.progress(total=len(texts), desc=desc, unit="text") if self.progress else None
        meta = {"config": self.config, "kind": kind, "instruction": instruction}
        chunk_size = int(getattr(self.encoder, "encode_chunk", 0) or 0)
        flush_rows = chunk_size or embedding_cache.FLUSH_ROWS
        chunk_size = max(1, chunk_size or ENCODE_CHUNK)
        order = length_order(texts)
        out: np.ndarray | None = None
        flushed = 0
        try:
            for start in range(0, len(order), chunk_size):
                rows = order[start: start + chunk_size]
                vectors = encode_texts(self.encoder, [texts[i] for i in rows], kind, instruction)
                if known_dim is not None and vectors.shape[1] != known_dim:  # before anything is cached
                    self._stale_size(namespace, vectors.shape[1], known_dim)
                if out is None:
                    out = np.empty((n_rows, vectors.shape[1]), dtype=np.float32)
                out[at[rows]] = vectors
                self.stats.encoded += len(rows)
                if bar is not None:
                    bar.update(len(rows))
                end = start + len(rows)
                if self.disk is not None and (end - flushed >= flush_rows or end == len(texts)):
                    done = order[flushed:end]
                    self.disk.append(namespace, [keys[i] for i in done], out[at[done]], meta)
                    flushed = end
        finally:
            if bar is not None:
                bar.close()
        assert out is not None
        return out


    def _stale_size(self, namespace: str, dim: int, known: int) -> None:
        where = f"the embedding cache {self.disk.root / namespace}" if self.disk is not None else "this run's memory"
        raise LmebError(f"model {getattr(self.encoder, 'name', type(self.encoder).__name__)!r} returned vectors of "
                        f"size {dim}, but {where} holds vectors of size {known} for the same config(): its output "
                        "changed without its config(); give it a new name/revision or delete that folder")


def length_order(texts: list[str]) -> np.ndarray:
    """Positions of ``texts`` longest first (characters; ties keep their order): chunks of similar length."""
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    return np.argsort(-lengths, kind="stable")
