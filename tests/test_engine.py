"""The engine's pieces: one strategy per model protocol, the results store, and the faults run must refuse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lmeb.cli import main as cli_main
from lmeb.engine.strategy import DenseRetrieval, RerankerRetrieval, SearcherRetrieval, strategy_for
from lmeb.errors import LmebError
from lmeb.models.base import model_type
from lmeb.models.bm25 import BM25Searcher

GORILLA = ("Procedural", "Gorilla", "gorilla_tensor")


def run_cli(*argv: object) -> int:
    return cli_main([str(a) for a in argv])


def copy_gorilla(sample_data: Path, tmp_path: Path) -> Path:
    """A data root holding only the sample's Gorilla (three subsets, a corpus each, no candidates)."""
    data = tmp_path / "data"
    shutil.copytree(sample_data / GORILLA[0] / GORILLA[1], data / GORILLA[0] / GORILLA[1])
    return data


def bm25_run(data: Path, out: Path, *extra: object) -> int:
    return run_cli("run", "--model", "bm25", "--tasks", "Gorilla", "--data", data, "--output", out,
                   "--no-cache", "--no-progress", *extra)


class Enc:
    def config(self):
        return {"class": "Enc"}

    def encode(self, texts, kind="query", instruction=None):
        return np.ones((len(texts), 2), np.float32)


class Pairs:
    def score(self, pairs, instruction=None):
        return np.zeros(len(pairs))


def test_one_strategy_per_protocol_and_a_clear_error_otherwise():
    assert model_type(Enc()) == "encoder" and isinstance(strategy_for(Enc()), DenseRetrieval)
    assert model_type(BM25Searcher()) == "searcher" and isinstance(strategy_for(BM25Searcher()), SearcherRetrieval)
    assert model_type(Pairs()) == "reranker" and isinstance(strategy_for(Pairs()), RerankerRetrieval)
    with pytest.raises(LmebError, match=r"^dict is not a model lmeb can run: it has no method encode\(texts"):
        model_type({})


def test_bm25_is_a_searcher_without_the_data_layer():
    code = "import sys, lmeb.models.bm25; print('lmeb.data.reader' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    searcher = BM25Searcher()
    got = searcher.search(["d1", "d2"], ["apple pie", "pear tart"], ["apple", "tart"], k=5,
                          candidates=[None, np.array([0], dtype=np.int64)])
    assert next(iter(got[0])) == "d1" and list(got[1]) == ["d1"]  # query 2 may only rank its candidate
    assert searcher.stats == {"corpora_indexed": 1} and searcher.uses_instructions is False


def test_bm25_on_an_empty_corpus_gives_empty_rankings():
    assert BM25Searcher().search([], [], ["apple", "pear"]) == [{}, {}]


@pytest.mark.parametrize(("file", "what"), [("queries.jsonl", "no queries"), ("qrels.tsv", "no relevance judgement"),
                                            ("corpus.jsonl", "no documents")])
def test_a_subset_that_cannot_be_evaluated_is_an_error_not_a_zero(sample_data, tmp_path, capsys, file, what):
    data = copy_gorilla(sample_data, tmp_path)
    empty = data.joinpath(*GORILLA) / file
    empty.write_text("")
    assert bm25_run(data, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"lmeb run: error: {empty}: {what}") and "gorilla_tensor" in err[0]
    done = tmp_path / "out" / "bm25" / "wo_inst" / "Gorilla.json"
    if done.is_file():  # subsets before the bad one are kept; the bad one never enters the file as a 0
        assert "gorilla_tensor" not in {s["hf_subset"] for s in json.loads(done.read_text())["scores"]["test"]}


def test_entry_without_hf_subset_is_damaged_and_redone(sample_data, tmp_path, capsys):
    data, out = copy_gorilla(sample_data, tmp_path), tmp_path / "out"
    assert bm25_run(data, out) == 0
    path = out / "bm25" / "wo_inst" / "Gorilla.json"
    good = json.loads(path.read_text())
    damaged = json.loads(path.read_text())
    del damaged["scores"]["test"][1]["hf_subset"]
    path.write_text(json.dumps(damaged))
    capsys.readouterr()
    assert run_cli("table", out) == 2  # the report reading it: one line naming the file, no KeyError
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"lmeb table: error: {path}: scores.test entry 1 has no 'hf_subset' (a damaged or hand-edited "
                   "file)"]
    assert bm25_run(data, out) == 0
    captured = capsys.readouterr()
    assert "hf_subset" in captured.err and "it will be replaced" in captured.err and "3/3" in captured.out
    assert json.loads(path.read_text())["scores"] == {
        "test": [{**s, "evaluation_time": e["evaluation_time"]} for s, e in
                 zip(good["scores"]["test"], json.loads(path.read_text())["scores"]["test"], strict=True)]}


def test_unwritable_output_fails_up_front_in_one_line(sample_data, tmp_path, capsys, monkeypatch):
    data = copy_gorilla(sample_data, tmp_path)
    searched = []
    monkeypatch.setattr(BM25Searcher, "index", lambda self, texts: searched.append(1))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert bm25_run(data, blocker) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{blocker}/bm25/wo_inst: cannot write results there" in err[0]
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert bm25_run(data, locked) == 2
        assert "cannot write results there (Permission denied)" in capsys.readouterr().err
    assert searched == []  # nothing was computed before the check


def test_full_disk_is_one_line(sample_data, tmp_path, capsys, monkeypatch):
    data = copy_gorilla(sample_data, tmp_path)

    def full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    assert bm25_run(data, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("cannot write results there (No space left on device); choose another "
                                             "--output")
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_model_counts_and_uses_instructions_in_provenance(sample_data, tmp_path, capsys):
    data, out = copy_gorilla(sample_data, tmp_path), tmp_path / "out"
    assert bm25_run(data, out, "--setting", "w_inst") == 0
    assert "note: bm25 ignores instructions, so its w_inst results equal wo_inst" in capsys.readouterr().err
    meta = json.loads((out / "bm25" / "w_inst" / "Gorilla.json").read_text())["lmeb"]
    assert meta["uses_instructions"] is False and meta["model_kind"] == "searcher"
    assert all(s["model_counts"] == {"model": {"corpora_indexed": 1}} for s in meta["subsets"].values())
