"""Weights and cache shards in a result's identity (issue 18, cases 2 and 3 of the issue's list: changed weights
never reuse old vectors or results; a lost index never lets damaged shards back in)."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from lmeb.cli import main as cli
from lmeb.models import fingerprint
from lmeb.models.fingerprint import SCHEME, is_verified, memo_path, weights_fingerprint

TEXTS = [f"document number {i} about memory" for i in range(12)]


def _fake_model(folder: Path, size: int = 3 << 20) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(np.random.default_rng(0).bytes(size))
    (folder / "config.json").write_text('{"hidden_size": 8}')
    return folder / "model.safetensors"


def _poke(path: Path, offset: int, data: bytes) -> None:
    """Change bytes in place: same size (and, unless told, a later mtime)."""
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def test_a_change_anywhere_in_the_weights_changes_the_fingerprint(tmp_path: Path) -> None:
    weights = _fake_model(tmp_path / "m")
    before = weights_fingerprint(tmp_path / "m", tmp_path / "cache")
    stat = weights.stat()
    _poke(weights, weights.stat().st_size // 2, b"\x00\x01\x02\x03")  # the middle: the older rule read neither end
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # an edit moves the mtime: the memo sees it
    assert weights_fingerprint(tmp_path / "m", tmp_path / "cache") != before


def test_a_warm_fingerprint_reads_no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_model(tmp_path / "m")
    cold = weights_fingerprint(tmp_path / "m", tmp_path / "cache")
    memo = json.loads(memo_path(tmp_path / "cache").read_text())
    [(path, entry)] = memo.items()
    assert path == str((tmp_path / "m" / "model.safetensors").resolve()) and len(entry) == 4
    read = []
    real = fingerprint.file_sha256
    monkeypatch.setattr(fingerprint, "file_sha256", lambda p: read.append(Path(p).name) or real(p))
    assert weights_fingerprint(tmp_path / "m", tmp_path / "cache") == cold
    assert read == ["config.json"]  # the small files only; the weights came from the memo
    (tmp_path / "copy").mkdir()  # a symlinked copy resolves to the same files: no re-read either
    for item in (tmp_path / "m").iterdir():
        (tmp_path / "copy" / item.name).symlink_to(item)
    read.clear()
    assert weights_fingerprint(tmp_path / "copy", tmp_path / "cache") == cold and "model.safetensors" not in read


def test_old_fingerprints_are_unverified() -> None:
    assert not is_verified({"class": "SentenceTransformerEncoder", "fingerprint": "ab" * 32})
    assert is_verified({"class": "X", "fingerprint": "ab" * 32, "fingerprint_scheme": SCHEME})
    assert is_verified({"class": "BM25Searcher"}) and is_verified(None)
    assert not is_verified({"pool": {"fingerprint": "ab" * 32}})  # nested (a Ray pool's model)


def _change_attention(model: Path) -> None:
    """Scale two attention matrices of layer 2 in place (same file size), as the issue's tester did."""
    path = model / "model.safetensors"
    with open(path, "rb") as fh:
        size = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(size))
    for name in ("encoder.layer.2.attention.self.query.weight", "encoder.layer.2.attention.self.key.weight"):
        start, end = header[name]["data_offsets"]
        with open(path, "r+b") as fh:
            fh.seek(8 + size + start)
            values = np.frombuffer(fh.read(end - start), dtype=np.float32)
            fh.seek(8 + size + start)
            fh.write((values * np.random.default_rng(1).uniform(-2, 2, values.shape)).astype(np.float32).tobytes())


@pytest.mark.slow
def test_changed_weights_never_reuse_vectors_or_results(minilm_path: Path, real_data: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import lmeb

    monkeypatch.setenv("LMEB_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "minilm"
    shutil.copytree(minilm_path, model)
    # MiniLM truncated to 64 tokens (as the Ray tests): the same model at half the work; what the test
    # checks (changed weights get new vectors and results) does not depend on the length
    common = {"tasks": "Gorilla/gorilla_pytorch", "data": real_data, "name": "minilm",
              "model_options": {"max_length": 64}}
    first = lmeb.evaluate(str(model), cache_dir=tmp_path / "cache", output=tmp_path / "res", **common)
    old = first[0].score("gorilla_pytorch")
    _change_attention(model)
    clean = lmeb.evaluate(str(model), cache_dir=None, **common)[0].score("gorilla_pytorch")  # no cache, no output
    assert clean != old
    again = lmeb.evaluate(str(model), cache_dir=tmp_path / "cache", output=tmp_path / "res", **common)
    assert again[0].score("gorilla_pytorch") == clean  # not the old model's cached vectors, nor its kept subset
    assert again.summaries[0].subsets_run == 1
    assert "was written with another configuration; its subsets will be replaced" in capsys.readouterr().err
    configs = [r.provenance["model_config"] for r in (first[0], again[0])]
    assert configs[0]["fingerprint"] != configs[1]["fingerprint"]
    assert configs[1]["fingerprint_scheme"] == SCHEME


# ------------------------------------------------------------------------------------------ cache shards
def _as_dead_run(folder: Path) -> None:
    """Give every shard the name a finished (dead) run's shards have, so a scan may adopt them."""
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for path in sorted(folder.iterdir()):
        head, sep, rest = path.name.partition("-")
        if sep and head.isdigit():
            path.rename(folder / f"{dead.pid}-{rest}")


def test_a_lost_index_never_lets_damaged_shards_back(tmp_path: Path, capsys) -> None:
    from lmeb.embeddings.store import EmbeddingStore
    from tests.test_embeddings import HashEncoder

    enc = HashEncoder()
    EmbeddingStore(enc, cache_dir=tmp_path).embed(TEXTS, "document")
    [folder] = [p.parent for p in (tmp_path / "embeddings").rglob("index.json")]
    (folder / "index.json").unlink()
    for vectors in folder.glob("*.npy"):
        if not vectors.name.endswith(".keys.npy"):
            np.save(vectors, np.load(vectors)[::-1].copy())  # every row now belongs to another text
    _as_dead_run(folder)
    assert cli(["cache", "verify", "--cache-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "damaged: " in out and "does not match the checksum beside it" in out
    store = EmbeddingStore(enc, cache_dir=tmp_path)
    with pytest.warns(Warning, match="does not match the checksum beside it"):
        got = store.embed(TEXTS, "document")
    assert store.stats.encoded == len(set(TEXTS))  # nothing adopted: all encoded again
    np.testing.assert_array_equal(got, enc.encode(TEXTS, "document"))


def test_a_shard_without_checksum_outside_the_index_is_not_trusted(tmp_path: Path, capsys) -> None:
    from lmeb.embeddings.store import EmbeddingStore
    from tests.test_embeddings import HashEncoder

    EmbeddingStore(HashEncoder(), cache_dir=tmp_path).embed(TEXTS, "document")
    [folder] = [p.parent for p in (tmp_path / "embeddings").rglob("index.json")]
    (folder / "index.json").unlink()
    for path in folder.glob("*.sum.json"):
        path.unlink()
    _as_dead_run(folder)
    assert cli(["cache", "prune", "--cache-dir", str(tmp_path)]) == 0
    assert "no checksum beside it" in capsys.readouterr().out
    assert not list(folder.glob("*.npy"))


@pytest.mark.slow
def test_damaged_shards_of_a_real_run_are_recomputed(minilm_path: Path, real_data: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The issue's case: MiniLM on real data, index.json deleted, every shard's rows reversed: the run used to
    adopt them (ndcg@10 0.585 -> 0.039); now it gets the clean number."""
    monkeypatch.setenv("LMEB_CACHE", str(tmp_path / "cache"))
    base = ["run", "--model", str(minilm_path), "--tasks", "Gorilla/gorilla_pytorch", "--data", str(real_data),
            "--no-progress", "--cache-dir", str(tmp_path / "cache"), "--max-length", "64"]  # half the work
    assert cli([*base, "--output", str(tmp_path / "a")]) == 0
    clean = json.loads(next((tmp_path / "a").rglob("Gorilla.json")).read_text())
    for folder in {p.parent for p in (tmp_path / "cache" / "embeddings").rglob("index.json")}:
        (folder / "index.json").unlink()
        for vectors in folder.glob("*.npy"):
            if not vectors.name.endswith(".keys.npy"):
                np.save(vectors, np.load(vectors)[::-1].copy())
        _as_dead_run(folder)
    capsys.readouterr()
    assert cli(["cache", "verify", "--cache-dir", str(tmp_path / "cache")]) == 1
    assert cli([*base, "--output", str(tmp_path / "b")]) == 0
    again = json.loads(next((tmp_path / "b").rglob("Gorilla.json")).read_text())
    assert again["scores"]["test"][0]["ndcg_at_10"] == clean["scores"]["test"][0]["ndcg_at_10"]


def test_cache_info_marks_a_namespace_of_an_old_fingerprint(tmp_path: Path, capsys) -> None:
    from lmeb.embeddings.store import EmbeddingStore
    from tests.test_embeddings import HashEncoder

    class OldFingerprint(HashEncoder):
        def config(self) -> dict:  # a config as lmeb wrote it before fingerprint_scheme
            return {**super().config(), "fingerprint": "ab" * 32}

    EmbeddingStore(OldFingerprint(), cache_dir=tmp_path).embed(TEXTS, "document")
    EmbeddingStore(HashEncoder(tag="b"), cache_dir=tmp_path).embed(TEXTS, "document")
    assert cli(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " rows, dim " in line]
    assert len(lines) == 2 and sum("(unverified: older weights fingerprint)" in line for line in lines) == 1


def test_old_results_are_read_marked_unverified_and_not_resumed(tmp_path: Path, write_results) -> None:
    from lmeb.report.views import build_table
    from lmeb.results.store import ResultsStore
    from lmeb.tasks.registry import get_task

    old = {"model_config": {"class": "SentenceTransformerEncoder", "fingerprint": "ab" * 32}, "run_key": "old"}
    write_results(tmp_path, "m", datasets=["LoCoMo"], scores=lambda t, i, s: {"ndcg_at_10": 0.5}, provenance=old,
                  per_query=lambda t, s: {"q0": 0.5})
    table = build_table(tmp_path, view="datasets")
    assert [r.marks for r in table.rows] == ["°"]
    assert any(note.startswith("° unverified weights") for note in table.footnotes)
    from lmeb.leaderboard.site import _run_entries
    from lmeb.report.aggregate import as_results

    (row,) = _run_entries(as_results(tmp_path))
    assert row["unverified"].startswith("unverified weights: written with lmeb's older weights fingerprint")
    warned: list[str] = []
    kept = ResultsStore(tmp_path, "m", "wo_inst", log=warned.append).previous(get_task("LoCoMo"), "new", False, [])
    assert kept == {} and "older weights fingerprint (unverified" in warned[0]
