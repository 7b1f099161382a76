"""Faults injected into the embedding cache: damaged, empty and NaN shards, full and unwritable disks,
concurrent writers, kill -9 leftovers, file permissions, and the ``lmeb cache`` repair commands."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from lmeb.cli import main as cli_main
from lmeb.embeddings import disk_cache as embedding_cache
from lmeb.embeddings.cache_info import scan_cache
from lmeb.embeddings.disk_cache import CacheWarning, DiskCache
from lmeb.embeddings.shard_checksum import SUFFIX as SUM_SUFFIX
from lmeb.embeddings.store import EmbeddingStore, namespace_key
from lmeb.files import atomic_write_text, clean_stale_temporaries, stale_temporaries
from tests.test_embeddings import HashEncoder

TEXTS = [f"document number {i}" for i in range(12)]


def _filled(tmp_path: Path) -> tuple[HashEncoder, Path]:
    """A cache holding TEXTS' document vectors; returns the encoder and the namespace folder."""
    enc = HashEncoder()
    EmbeddingStore(enc, cache_dir=tmp_path).embed(TEXTS, "document")
    folder = tmp_path / "embeddings" / namespace_key(enc.config(), "document", None)
    return enc, folder


def _shard(folder: Path) -> Path:
    (vectors,) = [p for p in folder.glob("*.npy") if not p.name.endswith(".keys.npy")]
    return vectors


def _rerun(tmp_path: Path) -> tuple[EmbeddingStore, np.ndarray]:
    store = EmbeddingStore(HashEncoder(), cache_dir=tmp_path)
    return store, store.embed(TEXTS, "document")


@pytest.mark.parametrize("damage", ["zeros", "float64", "empty_vectors", "empty_keys", "garbage_keys"])
def test_damaged_shard_is_named_dropped_and_encoded_again(tmp_path, damage):
    enc, folder = _filled(tmp_path)
    vec_path = _shard(folder)
    keys_path = vec_path.with_name(vec_path.name[:-4] + ".keys.npy")
    good = np.load(vec_path)
    if damage == "zeros":
        np.save(vec_path, np.zeros_like(good))  # finite, right shape: only the checksum tells
    elif damage == "float64":
        np.save(vec_path, good.astype(np.float64))
    elif damage == "empty_vectors":
        vec_path.write_bytes(b"")
    elif damage == "empty_keys":
        keys_path.write_bytes(b"")
    else:
        keys_path.write_bytes(b"\x93NUMPY garbage")
    with pytest.warns(CacheWarning, match=vec_path.name):
        store, got = _rerun(tmp_path)
    assert store.stats.encoded == len(TEXTS) and store.stats.disk == 0
    np.testing.assert_array_equal(got, enc.encode(TEXTS, "document"))
    assert not vec_path.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the re-encoded shard is good: no warning, all from disk
        store, again = _rerun(tmp_path)
    assert store.stats.disk == len(TEXTS)
    np.testing.assert_array_equal(again, got)


def test_nan_in_cache_is_blamed_on_the_cache_file_not_the_model(tmp_path):
    enc = HashEncoder()
    namespace = namespace_key(enc.config(), "document", None)
    cache = DiskCache(tmp_path)
    bad = enc.encode(TEXTS, "document")
    bad[3, 0] = np.nan
    from lmeb.digest import text_digest

    cache.append(namespace, [text_digest(t) for t in TEXTS], bad, {"kind": "document"})
    with pytest.warns(CacheWarning, match=r"non-finite values .* cache file \(not from the model\)"):
        store, got = _rerun(tmp_path)
    assert store.stats.encoded == len(TEXTS)
    assert np.isfinite(got).all()


def _full_disk(*args, **kwargs):
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("fault", ["full_disk", "index_unwritable", "cache_is_a_file"])
def test_failing_cache_write_warns_once_and_the_run_goes_on(tmp_path, monkeypatch, fault):
    cache_dir = tmp_path / "cache"
    if fault == "full_disk":
        monkeypatch.setattr(embedding_cache.np, "save", _full_disk)
    elif fault == "index_unwritable":
        def read_only(*args, **kwargs):
            raise PermissionError(13, "Permission denied")
        monkeypatch.setattr(embedding_cache, "atomic_write_json", read_only)
    else:
        cache_dir.write_text("a file where the cache folder should be")
    enc = HashEncoder()
    store = EmbeddingStore(enc, cache_dir=cache_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = store.embed(TEXTS[:6], "document")
        store.new_scope()
        second = store.embed(TEXTS, "query")
    cache_warnings = [w for w in caught if issubclass(w.category, CacheWarning)]
    assert len(cache_warnings) == 1, [str(w.message) for w in caught]
    assert "going on without writing" in str(cache_warnings[0].message)
    np.testing.assert_array_equal(first, enc.encode(TEXTS[:6], "document"))
    np.testing.assert_array_equal(second, enc.encode(TEXTS, "query"))


def _write_disjoint(cache_dir: str, part: int) -> None:
    texts = [f"text {part} {i}" for i in range(40)]
    store = EmbeddingStore(HashEncoder(), cache_dir=Path(cache_dir))
    for i in range(0, len(texts), 5):  # many small shards, each indexed under the lock
        store.embed(texts[i: i + 5], "document")


def _all_from_disk(cache_dir: Path, parts: int) -> None:
    texts = [f"text {p} {i}" for p in range(parts) for i in range(40)]
    store = EmbeddingStore(HashEncoder(), cache_dir=cache_dir)
    got = store.embed(texts, "document")
    assert store.stats.disk == len(texts) and store.stats.encoded == 0
    np.testing.assert_array_equal(got, HashEncoder().encode(texts, "document"))


def test_concurrent_threads_lose_no_shard(tmp_path):
    threads = [threading.Thread(target=_write_disjoint, args=(str(tmp_path), p)) for p in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    _all_from_disk(tmp_path, 4)


def test_concurrent_processes_lose_no_shard(tmp_path):
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_write_disjoint, args=(str(tmp_path), p)) for p in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    _all_from_disk(tmp_path, 3)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_a_killed_run_are_cleaned_and_adopted(tmp_path):
    enc, folder = _filled(tmp_path)
    dead = _dead_pid()
    stale_tmp = folder / f".x.npy.{dead}.abcd1234.tmp"
    stale_tmp.write_bytes(b"partial")
    live_tmp = folder / f".y.npy.{os.getppid()}.abcd1234.tmp"  # a running process's file stays
    live_tmp.write_bytes(b"in progress")
    half = folder / f"{dead}-half.npy"
    np.save(half, np.ones((2, 8), dtype=np.float32))  # killed before its keys file
    extra = ["an extra text", "another one"]  # killed after both files, before the index update
    orphan = folder / f"{dead}-orphan"
    from lmeb.digest import text_digest

    np.save(f"{orphan}.npy", enc.encode(extra, "document"))
    np.save(f"{orphan}.keys.npy", np.frombuffer(b"".join(text_digest(t) for t in extra), np.uint8).reshape(2, 16))
    from lmeb.embeddings import disk_cache as embedding_cache
    from lmeb.embeddings.shard_checksum import write_sum

    # the checksum beside the shard was written too (before the index): only then is an orphan trusted
    write_sum(folder, orphan.name, embedding_cache._entry(embedding_cache._load_shard(folder, orphan.name)))
    store = EmbeddingStore(HashEncoder(), cache_dir=tmp_path)
    got = store.embed(TEXTS + extra, "document")
    assert store.stats.encoded == 0
    np.testing.assert_array_equal(got, enc.encode(TEXTS + extra, "document"))
    assert not stale_tmp.exists() and live_tmp.exists() and not half.exists()
    index = json.loads((folder / "index.json").read_text())
    assert f"{dead}-orphan" in index["shards"]


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from lmeb.embeddings import disk_cache as embedding_cache
    from lmeb.embeddings.store import EmbeddingStore
    from tests.test_embeddings import HashEncoder
    embedding_cache.FLUSH_ROWS = 1
    class Slow(HashEncoder):
        encode_chunk = 3
        def encode(self, texts, kind="query", instruction=None):
            time.sleep(0.02)
            return super().encode(texts, kind, instruction)
    EmbeddingStore(Slow(), cache_dir=Path(sys.argv[1])).embed([f"t{i:06d}" for i in range(100000)], "document")
""")


@pytest.mark.slow  # a real kill -9 in a subprocess; in-process: the killed-run leftovers test above
def test_kill_9_while_writing_leaves_a_cache_that_verifies(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], cwd=Path(__file__).parent.parent)
    try:
        deadline = time.monotonic() + 30
        # 5 complete shards: a shard's checksum file is written last, after its vectors and keys
        # (lmeb.embeddings.shard_checksum); a shard killed before it is an unfinished write, deleted on scan
        while time.monotonic() < deadline and len(list(tmp_path.rglob(f"*{SUM_SUFFIX}"))) < 5:
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    (scan,) = scan_cache(tmp_path, fix=True)
    assert scan.problems == [] and scan.rows >= 15
    texts = [f"t{i:06d}" for i in range(scan.rows + 5)]
    store = EmbeddingStore(HashEncoder(), cache_dir=tmp_path)
    np.testing.assert_array_equal(store.embed(texts, "document"), HashEncoder().encode(texts, "document"))
    assert store.stats.disk >= 15
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "result.json", "{}")
        EmbeddingStore(HashEncoder(), cache_dir=tmp_path / "c").embed(["x"], "document")
    finally:
        os.umask(old)
    want = 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "result.json").stat().st_mode) == want
    for path in (tmp_path / "c").rglob("*.npy"):
        assert stat.S_IMODE(path.stat().st_mode) == want


def test_stale_temporaries_by_age(tmp_path):
    old = tmp_path / ".r.json.abc.tmp"  # no pid in the name: only its age says it is stale
    old.write_text("x")
    fresh = tmp_path / ".s.json.def.tmp"
    fresh.write_text("x")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    assert stale_temporaries(tmp_path) == [old] and old.exists()  # listing deletes nothing (lmeb cache info)
    assert clean_stale_temporaries(tmp_path) == [old]
    assert fresh.exists()


def test_cache_cli_info_verify_prune(tmp_path, capsys):
    _, folder = _filled(tmp_path)
    assert cli_main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "hash document: 1 shards, 12 rows, dim 8" in out
    assert cli_main(["cache", "verify", "--cache-dir", str(tmp_path)]) == 0
    vec_path = _shard(folder)
    np.save(vec_path, np.zeros((12, 8), dtype=np.float32))
    (folder / f".z.npy.{_dead_pid()}.abcd.tmp").write_bytes(b"")
    assert cli_main(["cache", "verify", "--cache-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"damaged: {vec_path}: checksum mismatch" in out and "lmeb cache prune repairs" in out
    assert vec_path.exists()  # verify changes nothing
    assert cli_main(["cache", "prune", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"deleted: {vec_path}" in out and "temporary file of a stopped run, deleted" in out
    assert not vec_path.exists() and not list(folder.glob(".*.tmp"))
    assert cli_main(["cache", "verify", "--cache-dir", str(tmp_path)]) == 0
    (tmp_path / "afile").write_text("")
    assert cli_main(["cache", "info", "--cache-dir", str(tmp_path / "afile")]) == 2
    assert "is a file" in capsys.readouterr().err
