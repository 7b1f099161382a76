"""One rule for "which selected datasets are present" in run, stats and validate: a folder that holds none
of them (e.g. one above the data root) is a one-line error pointing at the data root below it, never
"0 datasets checked, 22 skipped ... OK"."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lmeb.cli import main as cli


@pytest.fixture(scope="module")
def nested(sample_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose data root is two levels down: top/data/eval_data (as ../shared holds the rebuilt data)."""
    top = tmp_path_factory.mktemp("top")
    shutil.copytree(sample_data / "Procedural" / "Gorilla", top / "data" / "eval_data" / "Procedural" / "Gorilla")
    return top


@pytest.mark.parametrize("command", ["validate", "stats"])
def test_a_folder_above_the_data_root_is_one_line_pointing_below(command: str, nested: Path, capsys) -> None:
    assert cli([command, "--data", str(nested)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{nested}: none of the selected LMEB datasets is present" in err
    assert f"the data root seems to be {nested / 'data' / 'eval_data'}" in err


def test_run_says_the_same(nested: Path, tmp_path: Path, capsys) -> None:
    assert cli(["run", "--model", "bm25", "--all", "--data", str(nested), "--output", str(tmp_path / "out")]) == 2
    assert "the data root seems to be" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.json"))


def test_the_data_root_below_validates(nested: Path, capsys) -> None:
    assert cli(["validate", "--data", str(nested / "data" / "eval_data")]) == 0
    out = capsys.readouterr().out
    assert "total: 1 dataset checked (3 subsets)" in out  # one dataset, said so


def test_a_named_absent_dataset_is_named(nested: Path, capsys) -> None:
    assert cli(["stats", "--data", str(nested / "data" / "eval_data"), "--tasks", "Gorilla,LoCoMo"]) == 2
    assert "no data for LoCoMo (dataset folder missing)" in capsys.readouterr().err
