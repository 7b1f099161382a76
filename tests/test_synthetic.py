"""A synthetic run never passes for a real one: provenance ``synthetic: true``, a table mark and
footnote, a leaderboard badge; results on real data carry none of them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from lmeb.cli import main as cli
from lmeb.report.views import SYNTHETIC_NOTE
from lmeb.results.identity import SYNTHETIC_MARK


def _run_bm25(data: Path, out: Path, tasks: str) -> dict:
    argv = ["run", "--model", "bm25", "--tasks", tasks, "--data", str(data), "--output", str(out), "--no-progress",
            "--no-cache"]
    assert cli(argv) == 0
    (path,) = (out / "bm25" / "wo_inst").glob("*[!y].json")  # the dataset file, not its .per_query.json
    return json.loads(path.read_text())["lmeb"]


def test_a_run_on_the_sample_is_marked_everywhere(
    tmp_path: Path, sample_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    meta = _run_bm25(sample_data, out, "Proced_mem_bench")
    assert meta["synthetic"] is True and all(s["synthetic"] is True for s in meta["subsets"].values())
    capsys.readouterr()

    assert cli(["table", str(out), "--view", "datasets"]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("bm25"))
    assert f"wo_inst{SYNTHETIC_MARK}" in row and SYNTHETIC_NOTE in text

    assert cli(["leaderboard", str(out), "--out", str(tmp_path / "site"), "--no-figures"]) == 0
    data = json.loads((tmp_path / "site" / "data.json").read_text())
    (row,) = [r for r in data["rows"] if r["model"] == "bm25"]
    assert "synthetic" in row["synthetic"]  # the page shows it as a badge with this tooltip


def test_results_on_real_data_are_not_marked(
    tmp_path: Path, real_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = _run_bm25(real_data, tmp_path, "Proced_mem_bench")
    assert meta["synthetic"] is False
    capsys.readouterr()
    assert cli(["table", str(tmp_path), "--view", "datasets"]) == 0
    text = capsys.readouterr().out
    assert SYNTHETIC_MARK not in text and "synthetic" not in text


def test_only_synthetic_rows_get_the_mark(
    tmp_path: Path, write_results: Callable[..., list[Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    def scores(task: object, i: int, sub: str) -> dict[str, float]:
        return {"ndcg_at_10": 0.5, "R_cap_at_10": 0.6}

    write_results(tmp_path, "real-model", scores=scores, provenance={"synthetic": False})
    write_results(tmp_path, "demo-model", scores=scores, provenance={"synthetic": True})
    assert cli(["table", str(tmp_path), "--view", "paper"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert SYNTHETIC_MARK in next(line for line in lines if line.startswith("demo-model"))
    assert SYNTHETIC_MARK not in next(line for line in lines if line.startswith("real-model"))
    assert lines.count(SYNTHETIC_NOTE) == 1
