"""The weights fingerprint of a model folder: every byte of every file that can change a vector, hashed once.

A model's identity (its ``config()``, hence the resume rule and the embedding-cache namespace) carries
this fingerprint, so a model whose weights changed anywhere (even in place, at the same size) never
meets the vectors or results of the old one. Each file is hashed in full (sha256, large reads), and
the digest is remembered in a small JSON memo in the cache folder (``fingerprints.json``) keyed by the
file's resolved path and checked against its (size, mtime_ns, inode): a warm run reads no weights to
fingerprint them, a changed file (any of the four differs) is hashed again.

A hub snapshot's files are the hub's blobs (its cache symlinks); they are hashed the same way, beside the
resolved commit the identity records as ``revision``. ``SCHEME`` names this rule in the identity;
results and caches written under the older rule (size plus first/last MiB, no ``fingerprint_scheme``)
are read as before and called "unverified" (``is_verified``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from lmeb.cache import default_cache_dir
from lmeb.files import atomic_write_json
from lmeb.json_read import read_json_or

SCHEME = "sha256-full-v1"
MEMO_NAME = "fingerprints.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".gguf", ".ckpt", ".h5", ".msgpack", ".npz")
SMALL_SUFFIXES = (".json", ".txt", ".model", ".py")  # configs, vocabularies, sentencepiece, remote code
_READ = 1 << 24  # bytes per read while hashing (16 MiB)


def memo_path(cache_dir: Path | None = None) -> Path:
    """Where the digests are remembered: ``fingerprints.json`` in the cache folder ($LMEB_CACHE or ~/.cache/lmeb)."""
    return Path(cache_dir if cache_dir is not None else default_cache_dir()) / MEMO_NAME


def _stamp(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def file_sha256(path: Path) -> str:
    """sha256 of every byte of ``path`` (large reads, no memo)."""
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        while chunk := fh.read(_READ):
            digest.update(chunk)
    return digest.hexdigest()


class Memo:
    """The remembered digests: resolved path -> (size, mtime_ns, inode, sha256); saved atomically, and only
    when something new was hashed. An unreadable memo is an empty one; an unwritable one is not saved."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.hashed = 0  # files hashed (not found in the memo) since loading
        data = read_json_or(path)
        self.entries: dict[str, Any] = data if isinstance(data, dict) else {}

    def digest(self, file: Path) -> str:
        real = file.resolve()
        stamp = _stamp(real.stat())
        entry = self.entries.get(str(real))
        if isinstance(entry, list) and len(entry) == 4 and entry[:3] == stamp and isinstance(entry[3], str):
            return entry[3]
        sha = file_sha256(real)
        if _stamp(real.stat()) == stamp:  # unchanged while it was read: worth remembering
            self.entries[str(real)] = [*stamp, sha]
            self.hashed += 1
        return sha

    def save(self) -> None:
        if not self.hashed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, self.entries)
        except OSError:
            pass  # a read-only cache: the next run hashes again, nothing is wrong


def model_files(directory: Path) -> list[tuple[str, Path]]:
    """(relative name, path) of every file of a model folder that can change its vectors, sorted."""
    out = []
    for root, _, names in os.walk(directory, followlinks=True):
        for name in names:
            file = Path(root, name)
            rel = file.relative_to(directory).as_posix()
            if ".git" in file.parts or rel.startswith(".") or rel.endswith(".md") or not file.is_file():
                continue
            low = name.lower()
            if low.endswith(WEIGHT_SUFFIXES) or low.endswith(SMALL_SUFFIXES) or low in ("tokenizer", "merges"):
                out.append((rel, file))
    return sorted(out)


def weights_fingerprint(directory: Path, cache_dir: Path | None = None) -> str:
    """sha256 over (relative name, sha256 of the whole file) of every file ``model_files`` lists."""
    memo = Memo(memo_path(cache_dir))
    digest = hashlib.sha256()
    for rel, file in model_files(Path(directory)):
        sha = memo.digest(file) if file.name.lower().endswith(WEIGHT_SUFFIXES) else file_sha256(file)
        digest.update(f"{rel}\0{sha}\0".encode())
    memo.save()
    return digest.hexdigest()


def is_verified(config: Any) -> bool:
    """False for a model config whose weights fingerprint was made by the older rule (size plus the first and
    last MiB of each weights file): it may miss a change, so results made with it are "unverified"."""
    if not isinstance(config, dict):
        return True
    if config.get("fingerprint") is not None and config.get("fingerprint_scheme") != SCHEME:
        return False
    return all(is_verified(v) for v in config.values() if isinstance(v, dict))
