"""Damaged results and cache files (issue 19): every damage is one line naming the file in ``table``,
``compare`` and ``leaderboard``, a rerun redoes the damaged dataset (same numbers as a clean run), and
the cache commands report and repair a damaged index or a folder in place of a shard."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lmeb.cli import main as cli_main
from lmeb.embeddings.store import EmbeddingStore, namespace_key
from lmeb.results.dataset_result import PER_QUERY_SUFFIX
from tests.test_embeddings import HashEncoder

GORILLA = ("Procedural", "Gorilla")


def run_cli(*argv: object) -> int:
    return cli_main([str(a) for a in argv])


def edit_main(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        obj = json.loads(path.read_text())
        change(obj)
        path.write_text(json.dumps(obj))
    return damage


def edit_sidecar(change: Callable[[dict], None]) -> Callable[[Path], None]:
    """Change the sidecar and record its new sha256 in the main file (so only the shape is wrong)."""
    def damage(path: Path) -> None:
        side = path.with_suffix(PER_QUERY_SUFFIX)
        blocks = json.loads(side.read_text())
        change(blocks)
        data = json.dumps(blocks).encode()
        side.write_bytes(data)
        edit_main(lambda o: o["lmeb"].__setitem__("per_query_sha256", hashlib.sha256(data).hexdigest()))(path)
    return damage


def _first(blocks: dict) -> dict:
    return blocks[next(iter(blocks))]


MAIN_DAMAGES = {
    "lmeb_list": edit_main(lambda o: o.__setitem__("lmeb", [])),
    "lmeb_string": edit_main(lambda o: o.__setitem__("lmeb", "x")),
    "subsets_list": edit_main(lambda o: o["lmeb"].__setitem__("subsets", [])),
    "model_name_int": edit_main(lambda o: o["lmeb"].__setitem__("model_name", 5)),
    "random_bytes": lambda p: p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes()),
    "nested": lambda p: p.write_text("[" * 100_000),
}
SIDECAR_DAMAGES = {
    "metrics_list": edit_sidecar(lambda b: _first(b).__setitem__("metrics", [])),
    "query_ids_string": edit_sidecar(lambda b: _first(b).__setitem__("query_ids", "abc")),
}


@pytest.fixture(scope="module")
def clean(sample_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A data root with the sample's Gorilla and a clean BM25 results folder for it (two model names)."""
    root = tmp_path_factory.mktemp("damaged")
    data = root / "data"
    shutil.copytree(sample_data.joinpath(*GORILLA), data.joinpath(*GORILLA))
    for name in ("bm25", "other"):
        assert run_cli("run", "--model", "bm25", "--name", name, "--tasks", "Gorilla", "--data", data, "--output",
                       root / "res", "--no-cache", "--no-progress") == 0
    return data, root / "res"


def _copy(clean: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path, Path]:
    data, res = clean
    shutil.copytree(res, tmp_path / "res")
    return data, tmp_path / "res", tmp_path / "res" / "bm25" / "wo_inst" / "Gorilla.json"


def _no_traceback(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("damage", list(MAIN_DAMAGES))
def test_damaged_main_file_is_one_line_everywhere_and_a_rerun_redoes_it(damage, clean, tmp_path, capsys):
    data, res, path = _copy(clean, tmp_path)
    reference = json.loads(path.read_text())["scores"]["test"]
    MAIN_DAMAGES[damage](path)
    capsys.readouterr()
    for argv in (("table", res), ("compare", "bm25", "other", res, "--resamples", "20"),
                 ("leaderboard", res, "--out", tmp_path / "site", "--no-figures")):
        assert run_cli(*argv) == 2, argv
        err = _no_traceback(capsys)
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and str(path) in errors[0], (argv, err)
    assert run_cli("run", "--model", "bm25", "--tasks", "Gorilla", "--data", data, "--output", res, "--no-cache",
                   "--no-progress") == 0
    err = _no_traceback(capsys)
    assert str(path) in err and "replaced" in err
    redone = json.loads(path.read_text())
    assert [{k: v for k, v in e.items() if k != "evaluation_time"} for e in redone["scores"]["test"]] == \
        [{k: v for k, v in e.items() if k != "evaluation_time"} for e in reference]
    assert run_cli("table", res) == 0


@pytest.mark.parametrize("damage", list(SIDECAR_DAMAGES))
def test_damaged_sidecar_is_one_line_and_a_rerun_redoes_it(damage, clean, tmp_path, capsys):
    data, res, path = _copy(clean, tmp_path)
    SIDECAR_DAMAGES[damage](path)
    capsys.readouterr()
    assert run_cli("compare", "bm25", "other", res, "--resamples", "20") == 2
    err = _no_traceback(capsys)
    assert str(path.with_suffix(PER_QUERY_SUFFIX)) in err and "not a" in err
    assert run_cli("table", res) == 0  # the main file alone is fine
    assert run_cli("run", "--model", "bm25", "--tasks", "Gorilla", "--data", data, "--output", res, "--no-cache",
                   "--no-progress") == 0
    _no_traceback(capsys)
    assert run_cli("compare", "bm25", "other", res, "--resamples", "20") == 0


@pytest.mark.parametrize("damage", ["bogus_subset", "no_ndcg"])
def test_entries_a_rerun_cannot_keep_are_dropped(damage, clean, tmp_path, capsys):
    data, res, path = _copy(clean, tmp_path)
    obj = json.loads(path.read_text())
    if damage == "bogus_subset":
        extra = dict(obj["scores"]["test"][0], hf_subset="bogus_subset")
        obj["scores"]["test"].append(extra)
        path.write_text(json.dumps(obj))
    else:
        for entry in obj["scores"]["test"]:
            entry.pop("ndcg_at_10")
        path.write_text(json.dumps(obj))
        edit_sidecar(lambda b: [block["metrics"].pop("ndcg_at_10") for block in b.values()])(path)
    capsys.readouterr()
    assert run_cli("run", "--model", "bm25", "--tasks", "Gorilla", "--data", data, "--output", res, "--no-cache",
                   "--no-progress") == 0
    out, err = capsys.readouterr()
    redone = json.loads(path.read_text())
    names = [e["hf_subset"] for e in redone["scores"]["test"]]
    assert "bogus_subset" not in names and all("ndcg_at_10" in e for e in redone["scores"]["test"])
    if damage == "no_ndcg":
        assert "kept" not in out.split("\n")[2]  # every subset re-evaluated, none kept as it was
    assert ("bogus_subset" in err) if damage == "bogus_subset" else ("ndcg_at_10" in err)


# ----------------------------------------------------------------------------------------------- cache
def _filled(tmp_path: Path) -> tuple[HashEncoder, Path, list[str]]:
    enc, texts = HashEncoder(), [f"document {i}" for i in range(6)]
    EmbeddingStore(enc, cache_dir=tmp_path).embed(texts, "document")
    return enc, tmp_path / "embeddings" / namespace_key(enc.config(), "document", None), texts


@pytest.mark.parametrize("damage", ["shard_string", "meta_list", "shards_list", "not_object", "random_bytes",
                                    "nested", "config_list"])
def test_damaged_cache_index_in_run_verify_info_prune(damage, tmp_path, capsys):
    _enc, folder, texts = _filled(tmp_path)
    index_path = folder / "index.json"
    index = json.loads(index_path.read_text())
    if damage == "shard_string":
        index["shards"][next(iter(index["shards"]))] = "x"
    elif damage == "meta_list":
        index["meta"] = [1]
    elif damage == "config_list":
        index["meta"] = {"config": [1], "kind": 5, "instruction": 7}
    elif damage == "shards_list":
        index["shards"] = [1]
    elif damage == "not_object":
        index = [index]
    index_path.write_text(json.dumps(index))
    if damage == "random_bytes":
        index_path.write_bytes(bytes(range(256)) * 4)
    elif damage == "nested":
        index_path.write_text("{\"shards\": " + "[" * 100_000)
    for action in ("info", "verify"):
        code = run_cli("cache", action, "--cache-dir", tmp_path)
        out = capsys.readouterr().out
        _no_traceback(capsys)
        damaged = damage != "config_list"  # odd values inside meta: only described as '?', not a damaged index
        assert (code, "deleted" in out) == ((1 if action == "verify" and damaged else 0), False), (action, out)
        if action == "verify" and damaged:
            assert str(index_path) in out
    store = EmbeddingStore(HashEncoder(), cache_dir=tmp_path)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        vectors = store.embed(texts, "document")
    assert vectors.shape == (6, 8) and np.isfinite(vectors).all()
    assert bool(seen) == (damage != "config_list")  # a damaged index is named
    assert run_cli("cache", "prune", "--cache-dir", tmp_path) == 0
    capsys.readouterr()
    assert run_cli("cache", "verify", "--cache-dir", tmp_path) == 0
    fixed = json.loads(index_path.read_text())
    assert isinstance(fixed["meta"], dict) and all(isinstance(e, dict) for e in fixed["shards"].values())


def test_directory_in_place_of_a_shard_is_reported_and_pruned(tmp_path, capsys):
    _enc, folder, texts = _filled(tmp_path)
    (folder / "123-abc.npy").mkdir()
    (folder / "123-abc.npy" / "inside").write_text("x")
    assert run_cli("cache", "verify", "--cache-dir", tmp_path) == 1
    out = capsys.readouterr().out
    assert "123-abc.npy" in out and "directory" in out and "deleted" not in out
    store = EmbeddingStore(HashEncoder(), cache_dir=tmp_path)
    with pytest.warns(Warning):
        store.embed([*texts, "a new text"], "document")
    assert store.disk is not None and not store.disk.disabled  # writes stayed on
    assert run_cli("cache", "prune", "--cache-dir", tmp_path) == 0
    assert not (folder / "123-abc.npy").exists()
    assert run_cli("cache", "verify", "--cache-dir", tmp_path) == 0


def test_verify_reports_a_half_shard_as_to_repair(tmp_path, capsys):
    _enc, folder, _texts = _filled(tmp_path)
    np.save(folder / "999999-half.npy", np.zeros((1, 8), np.float32))  # half a shard of a stopped run
    assert run_cli("cache", "verify", "--cache-dir", tmp_path) in (0, 1)
    out = capsys.readouterr().out.replace(str(tmp_path), "TMP")
    assert "999999-half.npy" in out and "prune removes it" in out and "deleted" not in out
