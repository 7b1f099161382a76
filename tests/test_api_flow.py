"""Values flow one way: ``lmeb.evaluate`` returns what the runner computed, writes it only when there is an
output, and never reads back what it just wrote; its options are values checked once, where they are built."""

from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

import lmeb
from lmeb.cache import DEFAULT_CACHE, Cache
from lmeb.engine.options import EvalOptions, RunOptions, Scale
from lmeb.errors import LmebError
from lmeb.reporter import NullBar, Reporter
from lmeb.results.dataset_result import read_dataset_result
from lmeb.results.rankings import read_rankings

TASKS = "LoCoMo/single_hop,Gorilla/gorilla_tensor"


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_evaluate_takes_at_most_12_parameters() -> None:
    params = inspect.signature(lmeb.evaluate).parameters
    assert len(params) <= 12, list(params)
    assert list(params)[:4] == ["model", "tasks", "data", "setting"]


def test_without_output_nothing_is_written_and_the_rankings_stay_in_memory(sample_data: Path, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    scratch, work = tmp_path / "tmp", tmp_path / "cwd"
    scratch.mkdir()
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # a scratch folder would land here
    monkeypatch.chdir(work)
    lines: list[str] = []
    res = lmeb.evaluate("bm25", tasks=TASKS, data=sample_data, cache_dir=None, reporter=Reporter(lines.append))
    assert _files(scratch) == [] and _files(work) == []
    assert [r.task_name for r in res] == ["LoCoMo", "Gorilla"] and all(r.path is None for r in res)
    sub = res[0].subsets["single_hop"]
    assert sub.rankings and set(sub.rankings) == set(sub.query_ids)
    assert all(len(top) <= 100 for top in sub.rankings.values())
    assert [s.result for s in res.summaries] == list(res)  # the summaries hold the very same values
    frame = res.inspect("LoCoMo/single_hop", worst=2, k=3, data=sample_data)
    assert frame["score"].notna().any()


def test_with_output_the_returned_values_are_what_was_written_and_nothing_is_read_back(
        sample_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "results"
    memory = lmeb.evaluate("bm25", tasks=TASKS, data=sample_data, cache_dir=None, reporter=Reporter(lambda line: None))

    def no_read_back(*args: object, **kwargs: object) -> None:
        raise AssertionError("a results file was read back")

    monkeypatch.setattr("lmeb.results.store.read_dataset_result", no_read_back)
    written = lmeb.evaluate("bm25", tasks=TASKS, data=sample_data, cache_dir=None, output=out)
    monkeypatch.undo()
    for live, mem in zip(written, memory, strict=True):
        assert live.path is not None and live.path.is_file()
        disk = read_dataset_result(live.path, per_query=True)
        assert set(disk.subsets) == set(live.subsets) == set(mem.subsets)
        for name, sub in live.subsets.items():
            assert sub.scores == disk.subsets[name].scores == mem.subsets[name].scores
            assert sub.per_query == disk.subsets[name].per_query == mem.subsets[name].per_query
            assert sub.rankings is None  # on disk: lmeb inspect reads the sidecar
            ranked, why = read_rankings(live.path, sub.provenance)
            assert why == "" and ranked == mem.subsets[name].rankings  # the same top 100, held or written
        assert live.provenance["run_key"] == disk.provenance["run_key"]


def test_a_rerun_resumes_from_the_file_it_finds(sample_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    first = lmeb.evaluate("bm25", tasks="LoCoMo/single_hop", data=sample_data, cache_dir=None, output=out)
    again = lmeb.evaluate("bm25", tasks="LoCoMo/single_hop", data=sample_data, cache_dir=None, output=out)
    assert again.summaries[0].subsets_run == 0 and again.summaries[0].subsets_skipped == 1
    assert again[0].path == first[0].path and again[0].subsets["single_hop"].scores == \
        first[0].subsets["single_hop"].scores


def test_options_are_checked_where_they_are_built(sample_data: Path) -> None:
    with pytest.raises(LmebError, match="rerank_top_k must be at least 1"):
        EvalOptions(rerank_top_k=0)
    with pytest.raises(LmebError, match="unknown data source"):
        EvalOptions(source="elsewhere")
    with pytest.raises(LmebError, match="--scope pool"):
        EvalOptions(scope="corpus", distractors=[4])
    with pytest.raises(LmebError, match="workers must be a whole number"):
        Scale(workers=0)
    with pytest.raises(LmebError, match="unknown setting"):
        RunOptions(data=sample_data, setting="with")
    with pytest.raises(LmebError, match="save_runs writes TREC run files"):
        RunOptions(data=sample_data, save_runs=True)
    with pytest.raises(LmebError, match="data directory does not exist"):
        RunOptions(data=sample_data / "nowhere")
    run = RunOptions(data=str(sample_data), output="~/x")
    assert run.data == sample_data and run.output == Path(os.path.expanduser("~/x"))
    assert EvalOptions(distractors=[4, 16]).scopes == ["x4", "x16"]


def test_the_cache_value_names_its_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMEB_CACHE", str(tmp_path / "env"))
    assert Cache.of(DEFAULT_CACHE) == Cache(tmp_path / "env") == Cache.default()
    assert Cache.of(None) is None
    cache = Cache.of(tmp_path / "c")
    assert cache.embeddings == tmp_path / "c" / "embeddings" and cache.kalm == tmp_path / "c" / "kalm"


def test_the_reporter_gets_the_log_lines_and_draws_no_bar_by_default(sample_data: Path) -> None:
    lines: list[str] = []
    lmeb.evaluate(lambda texts: np.array([[len(t), 1.0] for t in texts], dtype=np.float32),
                  tasks="Gorilla/gorilla_tensor", data=sample_data, cache_dir=None, reporter=Reporter(lines.append))
    assert any("no config() and no name= was given" in line for line in lines)  # the run's warning, here
    assert isinstance(Reporter().bar(total=3), NullBar)


def test_the_run_summary_follows_the_tables_one_rule(sample_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """n of N subsets reads n/N* (no mean over fewer subsets), a complete dataset its mean, one subset asked
    for its own score, all from the values the run returned."""
    from lmeb.cli.run import print_summary
    from lmeb.report.aggregate import dataset_scores, scores_frame

    res = lmeb.evaluate("bm25", tasks="LoCoMo/single_hop,LoCoMo/multi_hop,Gorilla,Proced_mem_bench/easy",
                        data=sample_data, cache_dir=None, reporter=Reporter(lambda line: None))
    print_summary(res.summaries, "bm25", "wo_inst", 1.0)
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[2:5]}
    assert rows["LoCoMo"][2:4] == ["2/5*", "2/5*"]
    gorilla = dataset_scores(scores_frame([res[1]], "ndcg_at_10"))["value"].iloc[0]
    assert rows["Gorilla"][2] == f"{100 * gorilla:.2f}"
    easy = res[2].subsets["easy"].scores["ndcg_at_10"]
    assert rows["Proced_mem_bench/easy"][2] == f"{100 * easy:.2f}"
