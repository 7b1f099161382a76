"""Bad data that ``validate`` once passed and ``run`` crashed on (issue 19): huge or non-ASCII qrels scores,
lone surrogates, deeply nested JSON lines, 5000-digit ids, over-long and looping data roots. ``validate``
reports each with file:line; ``run`` fails in one line naming the same place."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from lmeb.cli import main as cli_main
from lmeb.data.validate import validate
from lmeb.results.consistency import result_problems
from lmeb.results.dataset_result import read_dataset_result

GORILLA = Path("Procedural/Gorilla")
SUBSET = "gorilla_tensor"  # the last subset: the run stops there, in one line


def run_cli(*argv: object) -> int:
    return cli_main([str(a) for a in argv])


def _replace_line(path: Path, make: Callable[[str], str]) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = make(lines[1])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _score(value: str) -> Callable[[str], str]:
    return lambda line: "\t".join([*line.split("\t")[:2], value])


CASES: dict[str, tuple[str, Callable[[str], str], str]] = {  # case -> (file, line 2 becomes, message part)
    "huge_score": ("qrels.tsv", _score("99999999999999999999"), "out of range"),
    "underscore_score": ("qrels.tsv", _score("1_0"), "not an integer"),
    "arabic_digit_score": ("qrels.tsv", _score("\u0661"), "not an integer"),
    "surrogate_query_id": ("queries.jsonl", lambda line: line.replace('"id": "', '"id": "\\ud800', 1),
                           "lone UTF-16 surrogate"),
    "surrogate_text": ("corpus.jsonl", lambda line: line.replace('"text": "', '"text": "\\udc00', 1),
                       "lone UTF-16 surrogate"),
    "nested_line": ("corpus.jsonl", lambda line: '{"id": "x", "text": ' + "[" * 100_000 + "]" * 100_000 + "}",
                    "nested too deeply"),
    "huge_int_id": ("queries.jsonl", lambda line: '{"id": ' + "7" * 5000 + ', "text": "q"}', "malformed JSON"),
}


@pytest.fixture
def data(sample_data: Path, tmp_path: Path) -> Path:
    shutil.copytree(sample_data / GORILLA, tmp_path / "data" / GORILLA)
    return tmp_path / "data"


@pytest.mark.parametrize("case", list(CASES))
def test_validate_reports_and_run_fails_in_one_line(case, data, tmp_path, capsys):
    name, make, message = CASES[case]
    path = data / GORILLA / SUBSET / name
    _replace_line(path, make)
    report = validate(data, ["Gorilla"])
    problems = [p for p in report.errors if p.path == str(path)]
    assert problems and problems[0].line == 2 and message in problems[0].message, report.errors
    assert run_cli("validate", "--data", data, "--tasks", "Gorilla") != 0
    assert f"{path}:2" in capsys.readouterr().out
    code = run_cli("run", "--model", "bm25", "--tasks", "Gorilla", "--data", data, "--output", tmp_path / "out",
                   "--no-cache", "--no-progress")
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"{path}:2" in err and message in err
    # the subsets before the bad one are a readable, consistent file (a rerun after the fix resumes from it)
    written = read_dataset_result(tmp_path / "out" / "bm25" / "wo_inst" / "Gorilla.json", per_query=True)
    assert SUBSET not in written.subsets and not result_problems(written)


def test_over_long_and_looping_data_roots(tmp_path, capsys):
    long_root = tmp_path / ("x" * 250) / ("y" * 250) / ("z" * 4000)
    assert run_cli("validate", "--data", long_root) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "data directory unusable" in err and len(err.strip().splitlines()) == 1
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert run_cli("run", "--model", "bm25", "--tasks", "Gorilla", "--data", loop, "--output", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "symbolic link loop" in err and "does not exist" not in err


def test_valid_scores_still_read(data):
    """Negative and zero scores in ASCII digits stay accepted (the official qrels use 0/1/2)."""
    path = data / GORILLA / SUBSET / "qrels.tsv"
    _replace_line(path, _score("-1"))
    assert not [p for p in validate(data, ["Gorilla"]).errors if p.path == str(path)]
    assert json.dumps(validate(data, ["Gorilla"]).errors == [])
