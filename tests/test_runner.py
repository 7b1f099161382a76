"""End-to-end ``lmeb run``: mteb-layout files with provenance, cache reuse, resume after a kill, settings."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import lmeb.engine.runner
import lmeb.models.registry
from lmeb import __version__
from lmeb.cli import main as cli_main
from lmeb.data.reader import load_task
from lmeb.tasks.registry import get_task

PROVENANCE = ("harness", "harness_version", "run_key", "model_config", "setting", "data_fingerprint", "k_values",
              "tie_rule", "texts", "model_name")
SUBSET_PROVENANCE = ("data_fingerprint", "data_files", "texts", "seconds", "queries", "documents", "mteb_subset")


def run_cli(*argv: object) -> int:
    return cli_main([str(a) for a in argv])


def scores(path: Path) -> dict[str, dict]:
    obj = json.loads(path.read_text())
    return {s["hf_subset"]: {k: v for k, v in s.items() if k != "evaluation_time"} for s in obj["scores"]["test"]}


def subset_texts(path: Path) -> dict[str, dict]:
    return {name: p["texts"] for name, p in json.loads(path.read_text())["lmeb"]["subsets"].items()}


class RecordingEncoder:
    """A deterministic fake encoder that records what it is asked to encode (no model download)."""

    name = "recorder"
    similarity = "cosine"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, list[str]]] = []

    def encode(self, texts, kind="query", instruction=None):
        self.calls.append((kind, instruction, list(texts)))
        prefix = f"Instruct: {instruction}\nQuery:" if instruction and kind == "query" else ""
        words = [set((prefix + t).lower().split()) for t in texts]
        rows = []
        for ws in words:  # hashed bag of words: same words -> same direction
            v = np.zeros(64, dtype=np.float32)
            for w in ws:
                v[int(hashlib.md5(w.encode()).hexdigest(), 16) % 64] += 1
            rows.append(v + 1e-3)
        return np.stack(rows)

    def config(self):
        return {"class": "RecordingEncoder", "dim": 64}


@pytest.fixture(scope="module")
def minilm_run(tmp_path_factory, sample_data, minilm_path):
    """MiniLM on a sample dataset with a shared corpus, with TREC runs and a fresh disk cache."""
    tmp = tmp_path_factory.mktemp("minilm_run")
    out, cache = tmp / "results", tmp / "cache"
    rc = run_cli("run", "--model", minilm_path, "--name", "org/minilm", "--tasks", "LoCoMo", "--data",
              sample_data, "--output", out, "--cache-dir", cache, "--save-runs", "--no-progress", "--device", "cpu")
    assert rc == 0
    return out, cache


@pytest.mark.slow
def test_minilm_writes_mteb_layout_with_provenance(minilm_run, sample_data):
    out, _ = minilm_run
    folder = out / "org__minilm" / "wo_inst"
    visible = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))  # .LoCoMo.json.lock beside
    assert visible == ["LoCoMo.json", "LoCoMo.per_query.json", "LoCoMo.rankings", "LoCoMo.runs"]
    task = get_task("LoCoMo")
    obj = json.loads((folder / "LoCoMo.json").read_text())
    assert obj["task_name"] == "LoCoMo" and obj["mteb_task_name"] == task.mteb_name
    assert obj["dataset_revision"] == task.mteb_revision
    assert [s["hf_subset"] for s in obj["scores"]["test"]] == task.subset_names
    for entry in obj["scores"]["test"]:
        assert entry["main_score"] == entry["ndcg_at_10"] and 0 < entry["ndcg_at_10"] <= 1
        assert {"R_cap_at_10", "recall_at_1000", "mrr_at_10", "map_at_10", "precision_at_10"} <= set(entry)
    meta = obj["lmeb"]
    assert set(PROVENANCE) <= set(meta)
    assert meta["harness_version"] == __version__ and meta["setting"] == "wo_inst"
    assert meta["tie_rule"] == "score desc, doc id desc" and meta["model_config"]["precision"] == "fp32"
    for sub in meta["subsets"].values():
        assert set(SUBSET_PROVENANCE) <= set(sub)
        assert {"load", "encode", "search", "metrics"} <= set(sub["seconds"])
        assert sub["run_file"].startswith("LoCoMo.runs/")

    # the shared corpus is encoded once: later subsets take every document from memory
    subsets = list(load_task(task, sample_data))
    corpus = subsets[0].corpus
    assert all(s.corpus is corpus for s in subsets)
    texts = subset_texts(folder / "LoCoMo.json")
    queries = {t for s in subsets for t in s.query_texts}
    assert sum(t["encoded"] for t in texts.values()) == len(set(corpus.texts)) + len(queries)
    assert all(t["cached_memory"] >= len(corpus) for t in list(texts.values())[1:])

    side = json.loads((folder / "LoCoMo.per_query.json").read_text())
    first = subsets[0]
    assert side[first.subset]["query_ids"] == [q for q in first.query_ids if q in first.qrels]

    trec = (folder / "LoCoMo.runs" / f"{first.subset}.trec").read_text().splitlines()
    qid, q0, _doc, rank, score, tag = trec[0].split()
    assert (qid, q0, rank, tag) == (first.query_ids[0], "Q0", "1", "org__minilm") and float(score) <= 1.0


@pytest.mark.slow
def test_rerun_skips_then_overwrite_hits_the_cache(minilm_run, sample_data, minilm_path, capsys):
    out, cache = minilm_run
    path = out / "org__minilm" / "wo_inst" / "LoCoMo.json"
    before = path.read_text()
    args = ["run", "--model", minilm_path, "--name", "org/minilm", "--tasks", "LoCoMo", "--data", sample_data,
            "--output", out, "--cache-dir", cache, "--no-progress", "--device", "cpu"]
    assert run_cli(*args) == 0
    assert path.read_text() == before  # every subset was already there: nothing re-evaluated
    assert "0/5 (5 kept)" in capsys.readouterr().out

    assert run_cli(*args, "--overwrite") == 0
    after = json.loads(path.read_text())
    assert after["lmeb"]["texts"]["encoded"] == 0 and after["lmeb"]["texts"]["cached_disk"] > 0
    old = {s["hf_subset"]: s for s in json.loads(before)["scores"]["test"]}
    for s in after["scores"]["test"]:
        assert {k: v for k, v in s.items() if k != "evaluation_time"} == \
            {k: v for k, v in old[s["hf_subset"]].items() if k != "evaluation_time"}


def test_bm25_killed_run_leaves_valid_file_and_resumes(tmp_path, sample_data, monkeypatch):
    full, out = tmp_path / "full", tmp_path / "killed"
    args = ["run", "--model", "bm25", "--tasks", "LoCoMo", "--data", sample_data, "--no-progress", "--no-cache"]
    assert run_cli(*args, "--output", full) == 0

    real_evaluate = lmeb.engine.runner.evaluate
    calls = []

    def dies_on_third(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_evaluate(*a, **k)

    monkeypatch.setattr(lmeb.engine.runner, "evaluate", dies_on_third)
    assert run_cli(*args, "--output", out) == 130
    monkeypatch.setattr(lmeb.engine.runner, "evaluate", real_evaluate)
    path = out / "bm25" / "wo_inst" / "LoCoMo.json"
    assert len(scores(path)) == 2  # the two finished subsets, in a complete file
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]

    assert run_cli(*args, "--output", out) == 0  # resumes: only the three missing subsets run
    meta = json.loads(path.read_text())["lmeb"]
    assert len(meta["subsets"]) == 5
    assert scores(path) == scores(full / "bm25" / "wo_inst" / "LoCoMo.json")
    side = json.loads(path.with_suffix(".per_query.json").read_text())
    assert len(side) == 5  # the per-query values of the kept subsets survive the merge


def test_w_inst_changes_query_texts_only(tmp_path, sample_data, monkeypatch):
    encoders: list[RecordingEncoder] = []

    def fake_load_model(spec, **options):
        encoders.append(RecordingEncoder())
        return encoders[-1]

    monkeypatch.setattr(lmeb.models.registry, "load_model", fake_load_model)
    base = ["run", "--model", "fake", "--tasks", "Gorilla/gorilla_tensor", "--data", sample_data,
            "--output", tmp_path / "out", "--no-cache", "--no-progress"]
    assert run_cli(*base) == 0
    assert run_cli(*base, "--setting", "w_inst") == 0
    wo, w = encoders
    instruction = get_task("Gorilla").instruction("gorilla_tensor")
    assert [(k, i) for k, i, _ in wo.calls] == [("document", None), ("query", None)]
    assert [(k, i) for k, i, _ in w.calls] == [("document", None), ("query", instruction)]
    assert wo.calls[0][2] == w.calls[0][2] and wo.calls[1][2] == w.calls[1][2]  # same texts, instruction apart
    for setting in ("wo_inst", "w_inst"):
        meta = json.loads((tmp_path / "out" / "fake" / setting / "Gorilla.json").read_text())["lmeb"]
        assert meta["setting"] == setting
        assert meta["subsets"]["gorilla_tensor"]["instruction"] == (instruction if setting == "w_inst" else None)

    # Same command again: skipped. After an instruction edit (here: the recorded one differs): re-run.
    assert run_cli(*base, "--setting", "w_inst") == 0
    assert encoders[-1].calls == []
    path = tmp_path / "out" / "fake" / "w_inst" / "Gorilla.json"
    obj = json.loads(path.read_text())
    obj["lmeb"]["subsets"]["gorilla_tensor"]["instruction"] = "an older instruction"
    path.write_text(json.dumps(obj))
    assert run_cli(*base, "--setting", "w_inst") == 0
    assert [(k, i) for k, i, _ in encoders[-1].calls] == [("document", None), ("query", instruction)]


def test_bad_input_is_one_line_exit_2(tmp_path, sample_data, capsys):
    assert run_cli("run", "--model", tmp_path / "no-such-model", "--all", "--data", sample_data,
                "--output", tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lmeb run: error:") and "no-such-model" in err[0]
    assert run_cli("run", "--model", "bm25", "--tasks", "NoSuchSet", "--data", sample_data, "--output", tmp_path) == 2
    assert "unknown dataset" in capsys.readouterr().err
    assert run_cli("run", "--model", "bm25", "--all", "--data", tmp_path / "missing", "--output", tmp_path) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.slow
def test_real_data_bm25_and_minilm(tmp_path, real_data, minilm_path):
    out = tmp_path / "out"
    common = ["--data", real_data, "--output", out, "--cache-dir", tmp_path / "cache", "--no-progress"]
    assert run_cli("run", "--model", "bm25", "--tasks", "LoCoMo/open_domain", *common) == 0
    bm25 = json.loads((out / "bm25" / "wo_inst" / "LoCoMo.json").read_text())
    assert [s["hf_subset"] for s in bm25["scores"]["test"]] == ["open_domain"]
    assert 0.05 < bm25["scores"]["test"][0]["ndcg_at_10"] < 1
    assert bm25["lmeb"]["subsets"]["open_domain"]["data_files"]["corpus.jsonl"] == \
        hashlib.sha256((real_data / "Dialogue" / "LoCoMo" / "corpus.jsonl").read_bytes()).hexdigest()

    assert run_cli("run", "--model", minilm_path, "--name", "minilm", "--tasks", "Gorilla/gorilla_pytorch",
                   "--device", "cpu", *common) == 0
    path = out / "minilm" / "wo_inst" / "Gorilla.json"
    (subset,) = load_task(get_task("Gorilla"), real_data, ["gorilla_pytorch"])
    texts = json.loads(path.read_text())["lmeb"]["texts"]
    assert texts["encoded"] == len(set(subset.corpus.texts)) + len(set(subset.query_texts))
    assert texts["texts"] == len(subset.corpus) + len(subset.query_ids)
    assert 0.1 < json.loads(path.read_text())["scores"]["test"][0]["ndcg_at_10"] <= 1


class OverlapReranker:
    """A fake reranker: shared lower-case words between query and document."""

    name = "overlap"

    def __init__(self) -> None:
        self.pairs = 0

    def score(self, pairs, instruction=None):
        self.pairs += len(pairs)
        return np.array([len(set(q.lower().split()) & set(d.lower().split())) for q, d in pairs], dtype=float)

    def config(self):
        return {"class": "OverlapReranker"}


def test_reranker_second_stage_and_as_model(tmp_path, sample_data, monkeypatch):
    rerankers: list[OverlapReranker] = []

    def fake_reranker(spec, **options):
        rerankers.append(OverlapReranker())
        return rerankers[-1]

    monkeypatch.setattr(lmeb.models.registry, "load_reranker", fake_reranker)
    out = tmp_path / "out"
    common = ["--tasks", "LoCoMo/single_hop", "--data", sample_data, "--output", out, "--no-progress", "--no-cache"]
    assert run_cli("run", "--model", "bm25", "--reranker", "cross-encoder:/x/overlap", "--rerank-top-k", "3",
                   *common) == 0
    meta = json.loads((out / "bm25+rerank+overlap" / "wo_inst" / "LoCoMo.json").read_text())["lmeb"]
    assert meta["reranker_config"] == {"class": "OverlapReranker"} and meta["rerank_top_k"] == 3
    assert "rerank" in meta["subsets"]["single_hop"]["seconds"]
    assert 0 < rerankers[0].pairs <= 3 * meta["subsets"]["single_hop"]["queries"]

    monkeypatch.setattr(lmeb.models.registry, "load_model", lambda spec, **options: OverlapReranker())
    assert run_cli("run", "--model", "cross-encoder:/x/overlap", "--name", "ce", *common) == 0
    meta = json.loads((out / "ce" / "wo_inst" / "LoCoMo.json").read_text())["lmeb"]
    assert meta["model_kind"] == "reranker" and meta["texts"]["encoded"] == 0


def test_queries_without_candidates_are_a_counted_warning(tmp_path, sample_data, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(sample_data / "Dialogue" / "LoCoMo", data / "Dialogue" / "LoCoMo")
    cands = data / "Dialogue" / "LoCoMo" / "candidates.jsonl"
    lines = [json.loads(line) for line in cands.read_text().splitlines()]
    cands.write_text("".join(json.dumps({**r, "candidate_doc_ids": ["no-such-doc"]}) + "\n" for r in lines))
    assert run_cli("run", "--model", "bm25", "--tasks", "LoCoMo/open_domain", "--data", data,
                   "--output", tmp_path / "out", "--no-progress", "--no-cache") == 0
    captured = capsys.readouterr()
    assert "warning: LoCoMo/open_domain: none of its" in captured.err and "; 1 warning; results in" in captured.out
    obj = json.loads((tmp_path / "out" / "bm25" / "wo_inst" / "LoCoMo.json").read_text())
    sub = obj["lmeb"]["subsets"]["open_domain"]
    assert sub["queries_without_candidates"] == sub["queries"] > 0
    assert obj["scores"]["test"][0]["ndcg_at_10"] == 0


@pytest.mark.slow
def test_bm25_on_every_real_dataset_present(bm25_real_results, real_data):
    """CI covers every dataset in ../shared with BM25 (MiniLM runs one real subset above, for time); the run is
    ``lmeb run --model bm25 --all`` (conftest: once per test run, also read by the mteb-format equality)."""
    from lmeb.data.reader import present_tasks
    from lmeb.report.views import table
    from lmeb.tasks.registry import get_tasks

    out = bm25_real_results
    present = present_tasks(real_data, get_tasks())
    assert present, "no real dataset found"
    for task in present:
        obj = json.loads((out / "bm25" / "wo_inst" / f"{task.name}.json").read_text())
        assert [s["hf_subset"] for s in obj["scores"]["test"]] == task.subset_names
        assert all(0 < s["ndcg_at_10"] <= 1 and s["main_score"] == s["ndcg_at_10"] for s in obj["scores"]["test"])
        assert (out / "bm25" / "wo_inst" / f"{task.name}.per_query.json").is_file()
    # The report reads them back: every present dataset is complete, so it has a number.
    view = table([out], view="datasets")
    row = view.loc[("bm25", "wo_inst", "run")]
    for task in present:
        assert row[(task.memory_type, task.name)] > 0
