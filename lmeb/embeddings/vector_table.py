"""Vectors held in memory: rows in chunks (arrays, or memory maps of cache shards) with a text digest ->
row index, and the rule that releases a mapped shard's pages once read (``lmeb.embeddings.store`` reuses
vectors through it; ``lmeb.embeddings.disk_cache`` builds one per namespace from its shards)."""

from __future__ import annotations

import contextlib
import mmap

import numpy as np

GATHER_BLOCK = 1 << 14  # rows copied at once when gathering into a given array


def release_pages(array: np.ndarray) -> None:
    """Drop a memory-mapped shard's pages from this process's resident set once they have been read.

    They stay in the page cache (read again from there when needed). Without this, checking a shard
    or copying rows out of it leaves every cached vector resident in the mapping too: a warm run on a
    1M-document corpus held the vectors twice (the copy and the mapped pages). No-op for plain arrays.
    """
    mapped = getattr(array, "_mmap", None)  # np.memmap's mmap.mmap object
    if mapped is not None and hasattr(mmap, "MADV_DONTNEED"):
        with contextlib.suppress(OSError, ValueError):
            mapped.madvise(mmap.MADV_DONTNEED)


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

    def gather(self, rows: np.ndarray, dim: int, out: np.ndarray | None = None,
               at: np.ndarray | None = None) -> np.ndarray:
        """The vectors at global ``rows``: a fresh float32 array, or written into ``out[at]`` (one row of
        ``at`` per row of ``rows``) and ``out`` returned, copying at most ``GATHER_BLOCK`` rows at a time
        so that filling a large array never makes a second full-size copy."""
        if out is None:
            out = np.empty((len(rows), dim), dtype=np.float32)
            at = None
        if not len(rows):
            return out
        starts = np.asarray(self.starts)
        chunk_of = np.searchsorted(starts, rows, side="right") - 1
        for c in np.unique(chunk_of):
            picked = np.flatnonzero(chunk_of == c)
            for b in range(0, len(picked), GATHER_BLOCK):
                block = picked[b: b + GATHER_BLOCK]
                out[block if at is None else at[block]] = self.chunks[c][rows[block] - starts[c]]
            release_pages(self.chunks[c])
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
