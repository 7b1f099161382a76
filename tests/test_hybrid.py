"""lmeb.Hybrid through the engine: equal to a fusion computed here from its parts' saved TREC runs (every
metric cell), parts' caches reused (a hybrid of parts already run encodes nothing), exact identity, a
folder-safe name, the efficiency block, a reranker after a hybrid, the CLI spec, table and compare."""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lmeb
from lmeb.cli import main as cli
from lmeb.engine.metrics import K_VALUES
from lmeb.engine.metrics import evaluate as score_run
from lmeb.engine.options import EvalOptions
from lmeb.errors import LmebError
from lmeb.reporter import Reporter
from tests.conftest import MINILM_SHORT
from tests.test_fusion import _order, reference


class Toy:
    """A deterministic bag-of-hashed-words encoder that describes itself (so it is cached)."""

    name = "toy"

    def __init__(self) -> None:
        self.calls = 0

    def config(self) -> dict[str, Any]:
        return {"class": "tests.Toy", "dim": 64}

    def encode(self, texts: list[str], kind: str = "query", instruction: str | None = None) -> np.ndarray:
        self.calls += len(texts)
        vectors = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                vectors[i, zlib.crc32(word.encode()) % 64] += 1
        return vectors


class LengthReranker:
    """Scores a pair by how many query words the passage has (a cheap deterministic reranker)."""

    def config(self) -> dict[str, Any]:
        return {"class": "tests.LengthReranker"}

    def score(self, pairs: list[tuple[str, str]], instruction: str | None = None) -> np.ndarray:
        return np.array([len(set(q.lower().split()) & set(p.lower().split())) for q, p in pairs], dtype=np.float64)


def read_trec(path: Path) -> dict[str, dict[str, float]]:
    run: dict[str, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        qid, _, doc, _, score, _ = line.split()
        run.setdefault(qid, {})[doc] = float(score)
    return run


def independent_fusion(results: Path, parts: list[str], task: Any, root: Path, method: str,
                       weights: list[float]) -> dict[str, dict[str, float]]:
    """Per subset, every metric from the parts' TREC files fused by the reference (tests.test_fusion)."""
    from lmeb.data.reader import TaskReader

    reader = TaskReader(task, root)
    out = {}
    for subset in task.subset_names:
        runs = [read_trec(results / p / "wo_inst" / f"{task.name}.runs" / f"{subset}.trec") for p in parts]
        data = reader.load(subset)
        fused = {}
        for qid in data.query_ids:
            ref = reference([run.get(qid, {}) for run in runs], method, weights)
            fused[qid] = dict(_order(ref)[:1000])
        out[subset] = score_run(data.qrels, fused, K_VALUES).scores
    return out


def assert_every_cell_equal(hybrid: Any, expected: dict[str, dict[str, float]]) -> None:
    assert set(hybrid.subsets) == set(expected)
    for subset, scores in expected.items():
        got = hybrid.subsets[subset].scores
        assert set(got) == set(scores)
        for metric, value in scores.items():
            assert got[metric] == pytest.approx(value, abs=1e-12), (subset, metric)


def test_hybrid_equals_fusion_of_its_saved_parts_and_encodes_nothing(sample_data: Path, tmp_path: Path) -> None:
    out, cache, quiet = tmp_path / "results", tmp_path / "cache", {"reporter": Reporter(lambda m: None)}
    for model in ("bm25", Toy()):
        lmeb.evaluate(model, tasks="LoCoMo", data=sample_data, output=out, cache_dir=cache,
                      options=EvalOptions(save_runs=True), **quiet)
    toy = Toy()
    for method in ("rrf", "minmax"):
        hybrid = lmeb.Hybrid(["bm25", toy], fusion=method)
        res = lmeb.evaluate(hybrid, tasks="LoCoMo", data=sample_data, output=out, cache_dir=cache, **quiet)
        assert res.name == f"hybrid_bm25__toy_{method}" and (out / res.name / "wo_inst" / "LoCoMo.json").is_file()
        assert res.summaries[0].texts.encoded == 0 and toy.calls == 0  # the parts' cache serves every vector
        assert res.summaries[0].texts.disk > 0
        expected = independent_fusion(out, ["bm25", "toy"], lmeb.get_task("LoCoMo"), sample_data, method,
                                      hybrid.weights)
        assert_every_cell_equal(res[0], expected)
        prov = res[0].provenance["model_config"]
        assert prov["fusion"] == method and prov["depth"] == 1000 and prov["rrf_k"] == 60
        assert [p["config"] for p in prov["parts"]] == [hybrid.parts[0].config(), Toy().config()]
        cost = next(iter(res[0].subsets.values())).provenance["efficiency"]
        assert [p["name"] for p in cost["parts"]] == ["bm25", "toy"] and cost["fusion_seconds"] >= 0
        assert cost["seconds"] == pytest.approx(sum(p["seconds"] for p in cost["parts"]) + cost["fusion_seconds"],
                                                abs=2e-4)
        assert cost["texts"] == cost["parts"][0]["texts"]  # BM25's documents + queries; the toy encoded 0


def test_identity_names_and_bad_input(sample_data: Path, tmp_path: Path) -> None:
    a = lmeb.Hybrid(["bm25", Toy()], fusion="minmax", weights=[0.3, 0.7])
    b = lmeb.Hybrid(["bm25", Toy()], fusion="minmax", weights=[0.4, 0.6])
    assert a.config() != b.config() and a.name == "hybrid_bm25__toy_minmax_w0.3-0.7"
    assert lmeb.Hybrid(["bm25", Toy()], rrf_k=20, depth=100).name == "hybrid_bm25__toy_rrf_k20_d100"
    nested = lmeb.Hybrid([a, "bm25"], fusion="dbsf")
    assert nested.config()["parts"][0]["config"] == a.config()
    assert not set("+>/ ") & set(nested.name)
    for bad, match in ((["bm25"], "two parts"), (["bm25", Toy()], "unknown fusion")):
        with pytest.raises(LmebError, match=match):
            lmeb.Hybrid(bad, fusion="nope" if len(bad) == 2 else "rrf")
    with pytest.raises(LmebError, match="no config"):
        lmeb.Hybrid(["bm25", lambda texts: np.ones((len(texts), 2))])
    res = lmeb.evaluate(nested, tasks="Proced_mem_bench", data=sample_data, cache_dir=None,
                        reporter=Reporter(lambda m: None))
    assert res[0].subsets and res.name == nested.name


def test_a_reranker_follows_a_hybrid(sample_data: Path) -> None:
    res = lmeb.evaluate(lmeb.Hybrid(["bm25", Toy()]), tasks="Proced_mem_bench", data=sample_data, cache_dir=None,
                        reranker=LengthReranker(), options=EvalOptions(rerank_top_k=5),
                        reporter=Reporter(lambda m: None))
    assert res.name == "hybrid_bm25__toy_rrf+rerank+LengthReranker"
    assert res[0].provenance["rerank_top_k"] == 5 and res[0].provenance["model_kind"] == "hybrid"


def test_cli_spec_options_table_and_compare(sample_data: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "results")
    base = ("run", "--tasks", "Proced_mem_bench", "--data", str(sample_data), "--output", out, "--no-cache",
            "--no-progress")
    assert cli([*base, "--model", "bm25"]) == 0
    assert cli([*base, "--model", "hybrid:bm25+bm25", "--fusion", "minmax", "--fusion-weights", "0.3,0.7",
                "--fusion-depth", "50"]) == 0
    name = "hybrid_bm25__bm25_minmax_w0.3-0.7_d50"
    saved = json.loads((tmp_path / "results" / name / "wo_inst" / "Proced_mem_bench.json").read_text())
    config = saved["lmeb"]["model_config"]
    assert config["weights"] == [0.3, 0.7] and config["depth"] == 50
    capsys.readouterr()
    assert cli(["table", out, "--view", "datasets"]) == 0
    table = capsys.readouterr().out
    assert name in table and "bm25" in table.replace(name, "")
    assert cli(["table", out, "--view", "efficiency"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "Fusion s" in lines[2] and next(r for r in lines if r.startswith("bm25")).split()[-1] == "-"
    assert float(next(r for r in lines if r.startswith(name)).split()[-1]) >= 0  # the hybrid's fusion seconds
    assert cli(["compare", name, "bm25", out]) == 0
    assert "Proced_mem_bench" in capsys.readouterr().out
    assert cli([*base, "--model", "bm25", "--fusion", "rrf", "--name", "x"]) != 0
    assert "option fusion does not apply to bm25" in capsys.readouterr().err
    assert cli([*base, "--model", "hybrid:bm25+bm25", "--fusion-weights", "1,2,3"]) != 0
    assert "got 3 fusion weights for 2 parts" in capsys.readouterr().err
    assert cli([*base, "--model", "hybrid:bm25+", "--fusion-weights", "1,2"]) != 0
    assert "two or more parts" in capsys.readouterr().err
    assert cli([*base, "--model", "hybrid:bm25+bm25", "--ray"]) != 0
    assert "does not run on Ray" in capsys.readouterr().err


@pytest.mark.slow
def test_real_bm25_minilm_rrf_equals_the_fusion_of_saved_runs(real_data: Path, minilm_path: Path, tmp_path: Path,
                                                              minilm_proced_cache: Path) -> None:
    """Done-when: Proced_mem_bench, BM25 + MiniLM with RRF equals the fusion of the parts' TREC runs (every
    metric cell), and with the parts cached the hybrid encodes nothing. MiniLM's vectors come from the run's
    shared cache of Proced_mem_bench (conftest), copied: encoding them is not what this test checks."""
    out, cache, quiet = tmp_path / "results", tmp_path / "cache", {"reporter": Reporter(lambda m: None)}
    shutil.copytree(minilm_proced_cache, cache)
    common = {"tasks": "Proced_mem_bench", "data": real_data, "output": out, "cache_dir": cache, **quiet}
    lmeb.evaluate("bm25", options=EvalOptions(save_runs=True), **common)
    lmeb.evaluate(str(minilm_path), options=EvalOptions(save_runs=True), name="minilm",
                  model_options=MINILM_SHORT, **common)
    res = lmeb.evaluate(f"hybrid:bm25+{minilm_path}", model_options=MINILM_SHORT, **common)
    assert res.summaries[0].texts.encoded == 0 and res.summaries[0].texts.disk > 0
    expected = independent_fusion(out, ["bm25", "minilm"], lmeb.get_task("Proced_mem_bench"), real_data,
                                  "rrf", [1.0, 1.0])
    assert_every_cell_equal(res[0], expected)
    assert res.name.startswith("hybrid_bm25__") and res.name.endswith("_rrf") and "/" not in res.name


def test_auto_weights_are_cross_validated_recorded_and_marked(sample_data: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Each fold's queries are fused with its recorded weights (checked against the reference fusion of the
    parts' saved runs); the weights come from the grid; the table marks the row and says why."""
    from lmeb.engine.hybrid_cv import fold_of, simplex_grid

    out, cache, quiet = tmp_path / "results", tmp_path / "cache", {"reporter": Reporter(lambda m: None)}
    tasks = "LoCoMo,Proced_mem_bench"
    for model in ("bm25", Toy()):
        lmeb.evaluate(model, tasks=tasks, data=sample_data, output=out, cache_dir=cache,
                      options=EvalOptions(save_runs=True), **quiet)
    hybrid = lmeb.Hybrid(["bm25", Toy()], fusion="minmax", weights="auto")
    res = lmeb.evaluate(hybrid, tasks=tasks, data=sample_data, output=out, cache_dir=cache, **quiet)
    assert res.name == "hybrid_bm25__toy_minmax_cv" and res[0].provenance["model_config"]["weights"] == "auto"
    grid = simplex_grid(2)
    assert len(grid) == 11 and grid[0] == [0.0, 1.0]
    from lmeb.data.reader import TaskReader

    for dataset in res:
        task = lmeb.get_task(dataset.task_name)
        reader = TaskReader(task, sample_data)
        for subset, result in dataset.subsets.items():
            cv = result.provenance["fusion_cv"]
            assert cv["memory_type"] == task.memory_type and len(cv["weights_per_fold"]) == 5
            assert all(w in grid for w in cv["weights_per_fold"])
            runs = [read_trec(out / p / "wo_inst" / f"{task.name}.runs" / f"{subset}.trec") for p in ("bm25", "toy")]
            data = reader.load(subset)
            fused = {}
            for qid in data.query_ids:
                weights = cv["weights_per_fold"][fold_of(0, task.name, subset, qid)]
                fused[qid] = dict(_order(reference([r.get(qid, {}) for r in runs], "minmax", weights))[:1000])
            expected = score_run(data.qrels, fused, K_VALUES).scores
            assert result.scores["ndcg_at_10"] == pytest.approx(expected["ndcg_at_10"], abs=1e-12)
    capsys.readouterr()
    assert cli(["table", str(out)]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("hybrid_bm25__toy_minmax_cv"))
    assert "¶" in row and "cross-validation on the test queries" in text


def test_cross_validation_picks_the_best_point_of_the_other_folds() -> None:
    from lmeb.engine.hybrid_cv import choose

    grid = [[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]
    values = np.array([[1.0, 1.0, 0.0, 0.0],  # best on folds 0-1's queries
                       [0.4, 0.4, 0.4, 0.4],
                       [0.0, 0.0, 1.0, 0.9]])  # best on fold 2's queries
    folds = np.array([0, 1, 2, 2])
    # fold 0 sees queries 1-3: means 1/3, 0.4, 0.633 -> grid[2]; fold 2 sees queries 0-1: grid[0]
    assert choose(values, folds, grid, 3) == [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
