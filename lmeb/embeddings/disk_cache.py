"""The on-disk embedding cache: checksummed, memory-mapped vector shards per namespace.

``<cache>/embeddings/<namespace>/`` holds shards ``<pid>-<id>.npy`` (float32 rows) and
``<pid>-<id>.keys.npy`` (one 16-byte text digest per row), and ``index.json``, the shard index:
for each shard its rows, dimension and the blake2b checksum of both files, plus the namespace's
``meta`` (encoder config, kind, instruction). A shard is written atomically (temporary file +
rename), then entered in the index under a file lock (``.lock``, ``filelock``): concurrent runs
sharing a cache lose nothing. When a namespace is opened the first time in a process every shard
is checked against its checksum and for non-finite values; a shard that fails is deleted with a
warning naming the file, and its texts are simply encoded again.

The cache is an optimisation, never a reason to stop: an unreadable shard counts as missing, and a
failing write (full disk, read-only folder, a file where the folder should be) warns once and the
run goes on without the cache. What a ``kill -9`` leaves behind is repaired when a namespace is
opened: temporary files of dead processes are deleted, a complete shard missing from the index
(killed between the rename and the index update) is adopted when the checksum written beside it
matches its files (``lmeb.embeddings.shard_checksum``; else it is not trusted and deleted), half a shard is
deleted. ``lmeb cache info|verify|prune`` shows and repairs the cache (``scan_cache`` here).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from lmeb.cache import Cache
from lmeb.digest import DIGEST_SIZE
from lmeb.embeddings.shard_checksum import remove_sum, untrusted, write_sum
from lmeb.embeddings.vector_table import VectorTable, release_pages
from lmeb.errors import LmebError, LmebWarning
from lmeb.files import (
    STALE_SECONDS,
    atomic_path,
    atomic_write_json,
    clean_stale_temporaries,
    pid_alive,
)
from lmeb.json_read import clean_cache_index, read_json, read_json_or

FLUSH_ROWS = 16384  # rows buffered before a shard is written
COMPACT_SHARDS = 64  # a namespace with more shards than this is merged into one when opened
INDEX, LOCK = "index.json", ".lock"
LOCK_TIMEOUT = 600.0  # seconds to wait for another process's index update before giving up on the cache
_FINITE_BLOCK = 1 << 16  # rows checked for NaN at once


class CacheWarning(LmebWarning):
    """The embedding cache was damaged, or could not be written; the run goes on."""


def file_checksum(path: Path) -> str:
    """blake2b (16 bytes, hex) of a file's bytes."""
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Shard:
    """One checked shard: its files, its memory-mapped vectors and its keys."""

    name: str
    vectors_path: Path
    keys_path: Path
    vectors: np.ndarray
    keys: np.ndarray
    entry: dict[str, Any] | None = None  # its index entry, once computed (shard_checksum writes it beside)


@dataclass
class Scan:
    """What opening a namespace found: the good shards, what was wrong, what was (or would be) done."""

    namespace: str
    shards: list[Shard] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # damaged or unreadable files
    actions: list[str] = field(default_factory=list)  # files deleted, shards adopted
    meta: dict[str, Any] = field(default_factory=dict)
    bytes: int = 0

    @property
    def rows(self) -> int:
        return sum(len(s.keys) for s in self.shards)


def _writer_pid(name: str) -> int | None:
    head, sep, _ = name.partition("-")
    return int(head) if sep and head.isdigit() else None


def _writer_gone(folder: Path, name: str) -> bool:
    """Whether the run that wrote shard ``name`` is gone: its pid is dead (no pid: older lmeb), or the
    files are older than a day (pids are reused)."""
    pid = _writer_pid(name)
    if pid is None or (pid != os.getpid() and not pid_alive(pid)):
        return True
    times = [p.stat().st_mtime for p in folder.glob(f"{name}*.npy")]
    return bool(times) and time.time() - max(times) > STALE_SECONDS


def _load_shard(folder: Path, name: str) -> Shard:
    vec_path, keys_path = folder / f"{name}.npy", folder / f"{name}.keys.npy"
    if vec_path.is_dir() or keys_path.is_dir():
        raise ValueError("a directory in place of a shard file")
    vectors = np.load(vec_path, mmap_mode="r")
    keys = np.load(keys_path)
    if vectors.ndim != 2 or vectors.dtype != np.float32 or keys.shape != (len(vectors), DIGEST_SIZE):
        raise ValueError(f"shape {vectors.shape} {vectors.dtype} with keys {keys.shape}")
    return Shard(name, vec_path, keys_path, vectors, keys)


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:120] if text else type(exc).__name__


def _finite(vectors: np.ndarray) -> bool:
    finite = all(np.isfinite(vectors[i: i + _FINITE_BLOCK]).all() for i in range(0, len(vectors), _FINITE_BLOCK))
    release_pages(vectors)
    return finite


def _entry(shard: Shard) -> dict[str, Any]:
    if shard.entry is None:
        shard.entry = {"rows": len(shard.keys), "dim": int(shard.vectors.shape[1]),
                       "vectors": file_checksum(shard.vectors_path), "keys": file_checksum(shard.keys_path)}
    return shard.entry


class DiskCache:
    """Append-only, checksummed, memory-mapped vector shards under ``<root>/embeddings/<namespace>/``."""

    def __init__(self, root: Path) -> None:
        self.root = Cache(Path(root).expanduser()).embeddings
        self._tables: dict[str, VectorTable] = {}
        self.disabled: str | None = None  # why writing stopped (after the first failed write)
        with contextlib.suppress(OSError):
            clean_stale_temporaries(self.root)

    def _dir(self, namespace: str) -> Path:
        return self.root / namespace

    def lock(self, namespace: str) -> FileLock:
        """The namespace's index lock (the folder must exist)."""
        return FileLock(self._dir(namespace) / LOCK, timeout=LOCK_TIMEOUT)

    def read_index(self, namespace: str) -> dict[str, Any]:
        """``{"meta": ..., "shards": {name: entry}}``; an unreadable index counts as empty (shards get adopted)."""
        return self._read_index(namespace)[0]

    def _read_index(self, namespace: str) -> tuple[dict[str, Any], list[str]]:
        """The index and what reading it had to drop (bad entries, or the whole unreadable file)."""
        path = self._dir(namespace) / INDEX
        try:
            return clean_cache_index(read_json(path), path)  # names checked before any file is touched
        except FileNotFoundError:
            return {"meta": {}, "shards": {}}, []
        except LmebError as exc:
            return {"meta": {}, "shards": {}}, [f"{exc}; rebuilding it"]

    @contextlib.contextmanager
    def _index_update(self, namespace: str) -> Iterator[dict[str, Any]]:
        """Read-modify-write the index under the namespace lock."""
        with self.lock(namespace):
            index = self.read_index(namespace)
            yield index
            atomic_write_json(self._dir(namespace) / INDEX, index)

    # ------------------------------------------------------------------------------ open and check
    def scan(self, namespace: str, fix: bool = True) -> Scan:
        """Check every shard of ``namespace``; with ``fix`` delete damaged ones and adopt orphans."""
        folder = self._dir(namespace)
        result = Scan(namespace)
        if not folder.is_dir():
            return result
        index, index_problems = self._read_index(namespace)
        result.problems += index_problems
        result.meta = index.get("meta") or {}
        if not result.meta:  # meta.json: written by lmeb before the index existed
            result.meta = read_json_or(folder / "meta.json") or {}
        listed: dict[str, dict[str, Any]] = index["shards"]
        drop: list[str] = []
        adopt: dict[str, dict[str, Any]] = {}
        for name, entry in listed.items():
            why = self._check(folder, name, entry, result)
            if why:
                result.problems.append(why)
                drop.append(name)
        on_disk = {p.name[: -len(".keys.npy")] for p in folder.glob("*.keys.npy")}
        on_disk |= {p.name[: -len(".npy")] for p in folder.glob("*.npy") if not p.name.endswith(".keys.npy")}
        for name in sorted(on_disk - set(listed)):
            if not _writer_gone(folder, name):
                continue  # another run is writing it right now
            try:
                shard = _load_shard(folder, name)
            except FileNotFoundError:
                drop.append(name)
                result.actions.append(f"{folder / name}.npy: half a shard of a stopped run, "
                                      + ("deleted" if fix else "prune removes it"))
                continue
            except (OSError, ValueError, EOFError) as exc:
                drop.append(name)
                result.problems.append(f"{folder / name}.npy: unreadable cache shard ({_why(exc)})")
                continue
            if not _finite(shard.vectors):
                drop.append(name)
                result.problems.append(f"{shard.vectors_path}: non-finite values (NaN/inf) in the cache file")
                continue
            why = untrusted(folder, name, _entry(shard))  # never adopted on a fresh checksum of what it holds
            if why:
                drop.append(name)
                (result.problems if why[1] else result.actions).append(why[0])
                continue
            adopt[name] = _entry(shard)
            result.shards.append(shard)
            result.actions.append(f"{shard.vectors_path}: shard of a stopped run added to the index")
        damaged_index = fix and bool(index_problems)
        if fix and (drop or adopt or damaged_index):
            self._apply(namespace, drop, adopt)  # also rewrites a damaged index without its bad entries
        result.bytes = sum(s.vectors_path.stat().st_size + s.keys_path.stat().st_size for s in result.shards)
        return result

    def _check(self, folder: Path, name: str, entry: dict[str, Any], result: Scan) -> str | None:
        """None for a good shard (added to ``result``), else what is wrong with it."""
        vec_path = folder / f"{name}.npy"
        try:
            if not vec_path.stat().st_size or not (folder / f"{name}.keys.npy").stat().st_size:
                return f"{vec_path}: empty (0-byte) cache file"
            if file_checksum(vec_path) != entry.get("vectors") or \
                    file_checksum(folder / f"{name}.keys.npy") != entry.get("keys"):
                return f"{vec_path}: checksum mismatch (the cache file was changed or damaged)"
            shard = _load_shard(folder, name)
        except FileNotFoundError:
            return f"{vec_path}: shard listed in the index is missing"
        except (OSError, ValueError, EOFError) as exc:
            return f"{vec_path}: unreadable cache shard ({_why(exc)})"
        if not _finite(shard.vectors):
            return f"{vec_path}: non-finite values (NaN/inf) in the cache file (not from the model)"
        result.shards.append(shard)
        return None

    def _apply(self, namespace: str, drop: list[str], adopt: dict[str, dict[str, Any]]) -> None:
        folder = self._dir(namespace)
        try:
            with self._index_update(namespace) as index:
                for name in drop:
                    index["shards"].pop(name, None)
                index["shards"].update(adopt)
            for name in drop:  # index first: a file it does not list is never read
                for suffix in (".keys.npy", ".npy"):
                    path = folder / f"{name}{suffix}"
                    if path.is_dir() and not path.is_symlink():  # a folder in place of a shard file
                        shutil.rmtree(path)
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                remove_sum(folder, name)
        except OSError as exc:
            self._disable(exc, folder)

    def table(self, namespace: str) -> VectorTable:
        """The namespace's good shards, indexed (checked once per process; small shards merged when too many)."""
        if namespace not in self._tables:
            scan = self.scan(namespace)
            for problem in scan.problems:
                warnings.warn(f"{problem}; deleted, its texts will be encoded again", CacheWarning, stacklevel=2)
            shards = scan.shards
            small = [s for s in shards if len(s.keys) < FLUSH_ROWS]
            if len(small) > COMPACT_SHARDS and not self.disabled:
                merged = self._merge(namespace, small)
                if merged is not None:
                    shards = [s for s in shards if len(s.keys) >= FLUSH_ROWS] + [merged]
            table = VectorTable()
            for shard in shards:
                if table.dim is None or shard.vectors.shape[1] == table.dim:
                    table.add([k.tobytes() for k in shard.keys], shard.vectors)
            self._tables[namespace] = table
        return self._tables[namespace]

    # ---------------------------------------------------------------------------------------- write
    def _merge(self, namespace: str, shards: list[Shard]) -> Shard | None:
        """Write ``shards`` as one new shard and index it in their place, then delete them."""
        dim = shards[0].vectors.shape[1]
        shards = [s for s in shards if s.vectors.shape[1] == dim]
        vectors = np.concatenate([np.asarray(s.vectors) for s in shards])
        keys = np.concatenate([s.keys for s in shards])
        try:
            merged = self._write_shard(namespace, keys, vectors)
            with self._index_update(namespace) as index:
                if not all(s.name in index["shards"] for s in shards):
                    raise FileExistsError("merged by another run meanwhile")
                for s in shards:
                    index["shards"].pop(s.name)
                index["shards"][merged.name] = _entry(merged)
        except FileExistsError:
            return None
        except OSError as exc:
            self._disable(exc, self._dir(namespace))
            return None
        for s in shards:  # keys first: half a shard is recognised as such
            for path in (s.keys_path, s.vectors_path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            remove_sum(s.vectors_path.parent, s.name)
        return merged

    def _write_shard(self, namespace: str, keys: np.ndarray, vectors: np.ndarray) -> Shard:
        folder = self._dir(namespace)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{uuid.uuid4().hex}"
        vec_path, keys_path = folder / f"{name}.npy", folder / f"{name}.keys.npy"
        for path, array in ((vec_path, np.ascontiguousarray(vectors, dtype=np.float32)), (keys_path, keys)):
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.save(fh, array, allow_pickle=False)
        shard = Shard(name, vec_path, keys_path, np.load(vec_path, mmap_mode="r"), keys)
        write_sum(folder, name, _entry(shard))  # before the index: a shard it misses can still be checked
        return shard

    def _disable(self, exc: OSError, where: Path) -> None:
        if self.disabled is None:
            self.disabled = f"{where}: {exc.strerror or exc}"
            warnings.warn(f"embedding cache not writable ({self.disabled}); going on without writing to it",
                          CacheWarning, stacklevel=3)

    def append(self, namespace: str, keys: list[bytes], vectors: np.ndarray, meta: dict[str, Any]) -> None:
        """Add rows as a new indexed shard and to the in-process index; a failing write only warns (once)."""
        if not keys or self.disabled:
            return
        table = self.table(namespace)
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), DIGEST_SIZE)
        try:
            shard = self._write_shard(namespace, key_array, vectors)
            with self._index_update(namespace) as index:
                index["meta"] = index.get("meta") or meta
                index["shards"][shard.name] = _entry(shard)
        except OSError as exc:
            self._disable(exc, self._dir(namespace))
            return
        table.add(keys, shard.vectors)
