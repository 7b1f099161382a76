"""The embedding store: each unique text encoded once, a disk cache that survives kills and reruns."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from lmeb.embeddings import disk_cache as embedding_cache
from lmeb.embeddings import store as embeddings
from lmeb.embeddings import vector_table
from lmeb.embeddings.disk_cache import CacheWarning, DiskCache
from lmeb.embeddings.store import EmbeddingStore, namespace_key


class HashEncoder:
    """Deterministic vectors from text hashes; records every text it is asked to encode."""

    name = "hash"
    similarity = "cosine"

    def __init__(self, dim: int = 8, tag: str = "a") -> None:
        self.dim, self.tag = dim, tag
        self.seen: list[tuple[str, str, str | None]] = []

    def encode(self, texts, kind="query", instruction=None):
        self.seen += [(t, kind, instruction) for t in texts]
        out = []
        for t in texts:
            seed = hashlib.sha256(f"{self.tag}|{kind}|{instruction}|{t}".encode()).digest()
            out.append(np.frombuffer(seed[: self.dim], dtype=np.uint8).astype(np.float32))
        return np.stack(out)

    def config(self):
        return {"model": "hash", "dim": self.dim, "tag": self.tag}


def test_unique_texts_encoded_once_and_rows_in_order():
    enc = HashEncoder()
    store = EmbeddingStore(enc)
    texts = ["b", "a", "b", "c", "a"]
    got = store.embed(texts, "document")
    assert sorted(t for t, _, _ in enc.seen) == ["a", "b", "c"]
    np.testing.assert_array_equal(got, enc.encode(texts, "document"))
    again = store.embed(["c", "a", "b"], "document")  # the same corpus for another subset: all from memory
    assert store.stats.encoded == 3 and store.stats.memory == 3 and store.stats.requested == 8
    np.testing.assert_array_equal(again, enc.encode(["c", "a", "b"], "document"))


def test_kind_and_instruction_are_separate_namespaces():
    enc = HashEncoder()
    store = EmbeddingStore(enc)
    store.embed(["x"], "query")
    store.embed(["x"], "document")
    store.embed(["x"], "query", instruction="Find it")
    assert store.stats.encoded == 3
    assert namespace_key({"m": 1}, "query", None) != namespace_key({"m": 2}, "query", None)


def test_new_scope_drops_memory_but_disk_cache_serves(tmp_path):
    enc = HashEncoder()
    store = EmbeddingStore(enc, cache_dir=tmp_path)
    first = store.embed(["a", "b", "c"], "document")
    store.new_scope()
    second = store.embed(["c", "b", "a", "d"], "document")
    assert store.stats.encoded == 4 and store.stats.disk == 3
    np.testing.assert_array_equal(second[:3], first[::-1])

    fresh_enc = HashEncoder()
    rerun = EmbeddingStore(fresh_enc, cache_dir=tmp_path)  # a new process: nothing encoded
    np.testing.assert_array_equal(rerun.embed(["a", "b", "c", "d"], "document"), enc.encode(list("abcd"), "document"))
    assert fresh_enc.seen == [] and rerun.stats.disk == 4

    other = EmbeddingStore(HashEncoder(tag="other"), cache_dir=tmp_path)  # another config: no hits
    other.embed(["a"], "document")
    assert other.stats.encoded == 1


def test_kill_during_encoding_keeps_cache_readable(tmp_path, monkeypatch):
    monkeypatch.setattr(embeddings, "ENCODE_CHUNK", 2)
    monkeypatch.setattr(embedding_cache, "FLUSH_ROWS", 2)
    texts = [f"t{i}" for i in range(7)]

    class Dies(HashEncoder):
        def encode(self, texts, kind="query", instruction=None):
            if len(self.seen) >= 4:
                raise KeyboardInterrupt
            return super().encode(texts, kind, instruction)

    with pytest.raises(KeyboardInterrupt):
        EmbeddingStore(Dies(), cache_dir=tmp_path).embed(texts, "document")
    folder = next((tmp_path / "embeddings").iterdir())
    # an unreadable shard and a leftover temporary file are ignored
    (folder / "junk.npy").write_bytes(b"not an array")
    (folder / "junk.keys.npy").write_bytes(b"not keys either")
    (folder / ".x.npy.tmp").write_bytes(b"")
    enc = HashEncoder()
    store = EmbeddingStore(enc, cache_dir=tmp_path)
    with pytest.warns(CacheWarning, match="junk.npy: unreadable cache shard"):
        got = store.embed(texts, "document")
    assert store.stats.disk == 4 and store.stats.encoded == 3
    np.testing.assert_array_equal(got, enc.encode(texts, "document"))


def test_fragmented_namespace_is_compacted(tmp_path, monkeypatch):
    monkeypatch.setattr(embedding_cache, "COMPACT_SHARDS", 3)
    enc = HashEncoder()
    store = EmbeddingStore(enc, cache_dir=tmp_path)
    for i in range(5):
        store.embed([f"doc{i}"], "document")
    folder = next((tmp_path / "embeddings").iterdir())
    assert len(list(folder.glob("*.keys.npy"))) == 5
    table = DiskCache(tmp_path).table(namespace_key(enc.config(), "document", None))
    assert table.size == 5 and len(list(folder.glob("*.keys.npy"))) == 1
    rerun = EmbeddingStore(HashEncoder(), cache_dir=tmp_path)
    np.testing.assert_array_equal(rerun.embed([f"doc{i}" for i in range(5)], "document"),
                                  enc.encode([f"doc{i}" for i in range(5)], "document"))
    assert rerun.stats.encoded == 0


def test_texts_are_encoded_longest_first_across_chunks_and_returned_in_order(monkeypatch):
    monkeypatch.setattr(embeddings, "ENCODE_CHUNK", 3)
    texts = ["a" * n + str(i) for i, n in enumerate([3, 40, 1, 25, 7, 40, 12, 2])]
    enc = HashEncoder()
    calls: list[list[str]] = []
    original = enc.encode
    enc.encode = lambda batch, kind="query", instruction=None: (calls.append(list(batch)), original(batch, kind))[1]
    got = EmbeddingStore(enc).embed(texts, "document")
    np.testing.assert_array_equal(got, HashEncoder().encode(texts, "document"))  # caller's order, same vectors
    assert [len(c) for c in calls] == [3, 3, 2]
    flat = [len(t) for c in calls for t in c]
    assert flat == sorted(flat, reverse=True)  # sorted over the whole call, not inside each chunk


def test_encoder_encode_chunk_sets_call_and_flush_size(tmp_path):
    class Api(HashEncoder):
        encode_chunk = 4

    enc = Api()
    texts = [f"t{i}" for i in range(10)]
    EmbeddingStore(enc, cache_dir=tmp_path).embed(texts, "document")
    folder = next((tmp_path / "embeddings").iterdir())
    sizes = sorted(len(np.load(p)) for p in folder.glob("*.keys.npy"))
    assert sizes == [2, 4, 4]  # every request batch reached the disk on its own


def test_same_corpus_list_again_is_served_without_hashing(monkeypatch):
    """A corpus shared by several subsets comes back as the same list: its vectors are handed out again
    (counted as memory hits) without hashing every text again; a changed list is looked up afresh."""
    from lmeb.embeddings import store as embeddings

    enc = HashEncoder()
    store = EmbeddingStore(enc)
    corpus = [f"doc {i}" for i in range(50)] + ["doc 0"]
    first = store.embed(corpus, "document")
    digests = []
    real_digest = embeddings.text_digest
    monkeypatch.setattr(embeddings, "text_digest", lambda t: digests.append(t) or real_digest(t))
    again = store.embed(corpus, "document")
    assert again is first and not again.flags.writeable and digests == []
    assert store.stats.requested == 102 and store.stats.encoded == 50 and store.stats.memory == 50
    corpus[3] = "doc 3 edited"  # the same list object, changed: no stale vectors
    np.testing.assert_array_equal(store.embed(corpus, "document"), enc.encode(corpus, "document"))
    assert len(digests) == len(corpus) and store.stats.encoded == 51


def test_encoding_in_chunks_holds_one_copy_of_the_vectors(monkeypatch):
    """Chunks are written into one array as they are encoded: the peak is about one copy, not two."""
    import tracemalloc

    from lmeb.embeddings import store as embeddings

    class Wide(HashEncoder):  # 512 dimensions: the vectors outweigh the per-text bookkeeping
        def encode(self, texts, kind="query", instruction=None):
            return np.repeat(super().encode(texts, kind, instruction), 16, axis=1)

    monkeypatch.setattr(embeddings, "ENCODE_CHUNK", 256)
    enc = Wide(dim=32)
    texts = [f"text {i}" for i in range(8192)]
    tracemalloc.start()
    try:
        got = EmbeddingStore(enc).embed(texts, "document")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.shape == (8192, 512)
    assert peak < 1.5 * got.nbytes  # digests and bookkeeping: well under a second copy
    np.testing.assert_array_equal(got[:300], enc.encode(texts[:300], "document"))


class Wide(HashEncoder):
    """512 dimensions: the vectors outweigh the per-text bookkeeping (digests, positions)."""

    def encode(self, texts, kind="query", instruction=None):
        return np.repeat(super().encode(texts, kind, instruction), 16, axis=1)


@pytest.mark.parametrize("source", ["encoder", "disk", "memory"])
def test_repeated_texts_hold_one_copy_of_the_vectors(tmp_path, monkeypatch, source):
    """A few repeated texts (3 of 1,014,762 in the scale benchmark's corpus) must not make a second,
    expanded copy of the unique texts' vectors: whether the vectors are encoded, read from the disk cache
    or from memory, they go straight into the one output array."""
    import tracemalloc

    monkeypatch.setattr(embeddings, "ENCODE_CHUNK", 256)
    monkeypatch.setattr(vector_table, "GATHER_BLOCK", 512)
    enc = Wide(dim=32)
    unique = [f"text {i}" for i in range(8192)]
    texts = [*unique[:4000], "text 7", "text 8000", *unique[4000:], "text 7"]
    cache = tmp_path if source == "disk" else None
    store = EmbeddingStore(enc, cache_dir=cache)
    if source == "disk":
        store.embed(unique, "document")
        store = EmbeddingStore(enc, cache_dir=cache)
    elif source == "memory":
        store.embed(unique, "document")
    before = store.stats.copy()
    tracemalloc.start()
    try:
        got = store.embed(texts, "document")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.shape == (len(texts), 512)
    assert peak < 1.5 * got.nbytes  # one full-size array, not the unique array plus its expansion
    np.testing.assert_array_equal(got, enc.encode(texts, "document"))  # caller's order, repeats included
    counts = (store.stats - before).as_dict()
    assert counts["texts"] == 8195 and counts[{"encoder": "encoded", "disk": "cached_disk",
                                               "memory": "cached_memory"}[source]] == 8192
    assert counts["encoded"] + counts["cached"] == 8192 and not got.flags.writeable


def test_repeated_texts_from_memory_disk_and_encoder_at_once(tmp_path):
    """Rows from all three sources and repeats of each land in the caller's order, each unique text
    counted once where it came from; the repeated call is then served whole from memory."""
    enc = HashEncoder()
    EmbeddingStore(enc, cache_dir=tmp_path).embed(["d1", "d2", "d3"], "document")  # on disk only
    store = EmbeddingStore(enc, cache_dir=tmp_path)
    store.embed(["m1", "m2"], "document")  # encoded now: in memory (and on disk)
    texts = ["n1", "m1", "d2", "n1", "d1", "m1", "n2", "d2", "m2", "n2", "d3", "n1"]
    before = store.stats.copy()
    got = store.embed(texts, "document")
    np.testing.assert_array_equal(got, enc.encode(texts, "document"))
    assert (store.stats - before).as_dict() == {"texts": 12, "encoded": 2, "cached": 5,
                                                "cached_memory": 2, "cached_disk": 3}
    again = store.embed(list(reversed(texts)), "document")
    np.testing.assert_array_equal(again, got[::-1])
    assert store.stats.encoded == 4 and store.stats.disk == 3 and store.stats.memory == 2 + 7


def _resident_kib(path) -> int:
    """KiB of ``path``'s mapping resident in this process (Linux /proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as fh:
        for line in fh:
            if line[0] in "0123456789abcdef" and "-" in line.split()[0]:
                inside = line.rstrip().endswith(str(path))
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux /proc/self/smaps")
def test_disk_cache_is_memory_mapped_and_read_pages_are_released(tmp_path):
    """Shards are memory maps; once a warm run has copied rows out (or checked a shard), their pages
    are no longer resident in the process, so the vectors are not held twice."""
    enc = HashEncoder(dim=32)
    texts = [f"t{i}" for i in range(20000)]
    EmbeddingStore(enc, cache_dir=tmp_path).embed(texts, "document")
    store = EmbeddingStore(HashEncoder(dim=32), cache_dir=tmp_path)
    got = store.embed(texts, "document")
    assert store.stats.disk == len(texts)
    table = store.disk.table(namespace_key(enc.config(), "document", None))
    assert table.chunks and all(isinstance(c, np.memmap) for c in table.chunks)
    shards = [Path(c.filename) for c in table.chunks]
    assert sum(_resident_kib(p) for p in shards) < 64  # 2.5 MB of vectors read, none left resident
    np.testing.assert_array_equal(got[:100], enc.encode(texts[:100], "document"))
