"""Reading the official layout: every layout, document text rule, scenes and candidates, shared corpora."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import lmeb.data.reader as data
from lmeb.data.hub import fetch_files
from lmeb.data.lines import read_corpus
from lmeb.data.reader import TaskReader, data_root, load_subset, load_task, present_tasks
from lmeb.engine.retrieval import candidate_rows
from lmeb.errors import DataError, LmebError
from lmeb.tasks.registry import all_tasks, get_task


def test_every_layout_loads(sample_data: Path) -> None:
    layouts = set()
    for task in all_tasks():
        layouts.add(task.layout)
        for sub in load_task(task, sample_data):
            assert sub.query_ids and len(sub.corpus) and len(sub.query_ids) == len(sub.query_texts)
            assert all(q in sub.qrels for q in sub.query_ids)
            assert all(d in sub.corpus.row for q in sub.query_ids for d in sub.qrels[q])
            assert set(sub.files) >= {str(sub.corpus.path)}
            assert all(len(h) == 64 for h in sub.files.values())
    assert layouts == {"flat", "corpus_at_dataset_root", "corpus_at_scenario", "corpus_per_subset"}


def test_shared_corpus_is_read_once(sample_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    real = data.read_corpus
    monkeypatch.setattr(data, "read_corpus", lambda path, on_error=None: calls.append(path) or real(path, on_error))
    locomo = list(load_task(get_task("LoCoMo"), sample_data))
    assert len(locomo) == 5 and len(calls) == 1
    assert all(s.corpus is locomo[0].corpus for s in locomo)
    calls.clear()
    epbench = list(load_task(get_task("EPBench"), sample_data))
    assert len(epbench) == 54 and len(calls) == 9  # one corpus per scenario
    assert epbench[0].corpus is epbench[5].corpus and epbench[5].corpus is not epbench[6].corpus
    calls.clear()
    gorilla = list(load_task(get_task("Gorilla"), sample_data))
    assert len(calls) == 3 and len({id(s.corpus) for s in gorilla}) == 3


def test_reader_keeps_one_corpus_in_memory(sample_data: Path) -> None:
    reader = TaskReader(get_task("MemBench"), sample_data)
    for name in get_task("MemBench").subset_names:
        reader.load(name)
        assert len(reader._corpora) == 1


def test_document_text_rule(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "title": "Title", "text": "body"},
        {"id": "b", "title": "", "text": " body "},
        {"id": "c", "title": None, "text": "body"},
        {"id": "d", "text": "only text"},
        {"id": "e", "title": "only title"},
        {"id": 7, "title": "T"},
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\ufeff" + "\n".join(json.dumps(r) for r in rows) + "\n\n")
    corpus = read_corpus(path)
    assert corpus.ids == ["a", "b", "c", "d", "e", "7"]
    assert corpus.texts == ["Title body", "body", "body", "only text", "only title", "T"]
    assert corpus.row["d"] == 3 and len(corpus) == 6 and len(corpus.sha256) == 64


def test_scene_rule_first_two_fields_and_missing_scene(sample_data: Path) -> None:
    sub = load_subset(get_task("LoCoMo"), sample_data, "single_hop")
    assert sub.scenes is not None and sub.instruction.startswith("Given a query")
    whole = [q for q in sub.query_ids if sub.candidates(q) is None]
    restricted = [q for q in sub.query_ids if sub.candidates(q) is not None]
    assert whole and restricted  # the sample has a scene without a candidates line
    for q in restricted:
        scene = "_".join(q.split("_")[:2])
        assert sub.candidates(q) == sub.scenes[scene]
        assert len(sub.candidates(q)) < len(sub.corpus)  # candidates do not cover the corpus
        assert set(sub.qrels[q]) <= set(sub.candidates(q))
    rows = dict(zip(sub.query_ids, candidate_rows(sub), strict=True))
    for q in restricted:
        assert not rows[q].flags.writeable
        assert [sub.corpus.ids[r] for r in rows[q]] == sub.candidates(q)  # the candidates file's order
    assert all(rows[q] is None for q in whole)


def test_scene_rule_query_id(sample_data: Path) -> None:
    sub = load_subset(get_task("NovelQA"), sample_data, "Plot")
    with_line = [q for q in sub.query_ids if q in sub.scenes]
    assert with_line and len(with_line) < len(sub.query_ids)
    for q in sub.query_ids:
        assert sub.candidates(q) == sub.scenes.get(q)


def test_no_candidates_rule_means_whole_corpus(sample_data: Path) -> None:
    sub = load_subset(get_task("Gorilla"), sample_data, "gorilla_tensor")
    assert sub.scenes is None
    assert sub.candidates(sub.query_ids[0]) is None and candidate_rows(sub)[0] is None


def test_candidate_rows_drop_unknown_ids(tmp_path: Path) -> None:
    from lmeb.data.lines import Corpus
    from lmeb.data.reader import SubsetData

    corpus = Corpus(tmp_path / "c", ["d0", "d1", "d2"], ["a", "b", "c"], "")
    sub = SubsetData(get_task("QASPER"), "QASPER", corpus, ["q"], ["x"], {"q": {"d1": 1}}, {"q": ["d2", "zz", "d0"]})
    assert candidate_rows(sub)[0].tolist() == [2, 0]  # file order; "zz" is not in the corpus
    assert isinstance(candidate_rows(sub)[0], np.ndarray)


def test_qrels_score_zero_is_kept(sample_data: Path) -> None:
    scores = [
        s for t in all_tasks() for sub in load_task(t, sample_data) for d in sub.qrels.values() for s in d.values()
    ]
    assert 0 in scores and 1 in scores


def test_reader_errors_name_file_and_line(tmp_path: Path) -> None:
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1\td1\t1\nq1\td2\tx\n")
    with pytest.raises(DataError, match=rf"^{qrels}:2: score 'x' is not an integer$"):
        data.read_qrels(qrels)
    qrels.write_text("query-id\tcorpus-id\tscore\n")
    with pytest.raises(DataError, match="no header row"):
        data.read_qrels(qrels)
    with pytest.raises(DataError, match=rf"^{tmp_path / 'nope.jsonl'}: file not found$"):
        data.read_queries(tmp_path / "nope.jsonl")
    errors: list[DataError] = []
    ids, _, _ = data.read_queries(tmp_path / "nope.jsonl", errors.append)
    assert ids == [] and errors[0].kind == "missing_file"


def test_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample_data: Path) -> None:
    monkeypatch.delenv("LMEB_DATA", raising=False)
    with pytest.raises(LmebError, match="pass --data DIR or set LMEB_DATA"):
        data_root(None)
    with pytest.raises(LmebError, match="data directory does not exist"):
        data_root(tmp_path / "missing")
    monkeypatch.setenv("LMEB_DATA", str(sample_data))
    assert data_root(None) == sample_data
    (tmp_path / "eval_data" / "Dialogue").mkdir(parents=True)  # the hub's folder name is found too
    assert data_root(tmp_path) == tmp_path / "eval_data"


def test_present_tasks_on_real_data(real_data: Path) -> None:
    names = {t.name for t in present_tasks(real_data, all_tasks())}
    assert {"KnowMeBench", "LoCoMo", "Gorilla", "Proced_mem_bench"} <= names
    sub = load_subset(get_task("LoCoMo"), real_data, "multi_hop")
    assert len(sub.corpus) == 5882 and len(sub.query_ids) == 280
    assert all(len(sub.candidates(q) or []) >= 369 for q in sub.query_ids)


def test_download_uses_snapshot_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    calls: list[dict] = []

    def fake_snapshot_download(**kwargs: object) -> str:
        calls.append(kwargs)
        (Path(str(kwargs["local_dir"])) / "eval_data" / "Semantic").mkdir(parents=True)
        return str(kwargs["local_dir"])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    root = fetch_files(tmp_path / "lmeb", allow_patterns="*/LoCoMo/*")
    assert root == tmp_path / "lmeb" / "eval_data"
    assert calls[0]["repo_id"] == "KaLM-Embedding/LMEB" and calls[0]["repo_type"] == "dataset"
    assert calls[0]["allow_patterns"] == "*/LoCoMo/*"


def test_download_offline_fails_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # never the network in tests
    with pytest.raises(LmebError, match="cannot download KaLM-Embedding/LMEB"):
        fetch_files(tmp_path / "empty")
