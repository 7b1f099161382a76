"""``lmeb validate``: every error class with file and line, warnings counted, real data passes."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from lmeb.cli import main as cli
from lmeb.data.validate import ERRORS, WARNINGS, Problem, Report, validate

DATASETS = ("Procedural/Proced_mem_bench", "Dialogue/LoCoMo", "Semantic/QASPER")
PROCED = Path("Procedural/Proced_mem_bench")
LOCOMO = Path("Dialogue/LoCoMo")


@pytest.fixture
def tree(sample_data: Path, tmp_path: Path) -> Path:
    """A writable copy of three sample datasets (three layouts, both candidate rules)."""
    for d in DATASETS:
        shutil.copytree(sample_data / d, tmp_path / d)
    return tmp_path


def _append(path: Path, text: str) -> int:
    """Append a line; returns its line number."""
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, text]) + "\n")
    return len(lines) + 1


def _only(report: Report, kind: str) -> Problem:
    found = [p for p in report.errors + report.warnings if p.kind == kind]
    assert len(found) == 1, (kind, [str(p) for p in report.errors + report.warnings])
    return found[0]


def test_sample_passes_with_only_expected_warnings(sample_data: Path) -> None:
    report = validate(sample_data)
    assert report.ok and report.errors == []
    assert {p.kind for p in report.warnings} == {"scene_without_candidates"}
    assert sum(d.subsets for d in report.datasets) == 193 and not any(d.skipped for d in report.datasets)


def test_absent_datasets_are_skipped_unless_named(tree: Path) -> None:
    report = validate(tree)
    assert report.ok
    skipped = {d.name for d in report.datasets if d.skipped}
    assert len(skipped) == 19 and "EPBench" in skipped
    report = validate(tree, "LoCoMo,EPBench/default_claude_long__Times")
    problem = _only(report, "missing_dataset")
    assert str(problem) == f"{tree / 'Episodic/EPBench'}: dataset folder not found"


def _case_missing_file(tree: Path) -> tuple[Path, int | None]:
    path = tree / PROCED / "medium" / "qrels.tsv"
    path.unlink()
    return path, None


def _case_malformed_json(tree: Path) -> tuple[Path, int | None]:
    path = tree / PROCED / "easy" / "queries.jsonl"
    return path, _append(path, '{"id": "q9", "text": ')


def _case_not_an_object(tree: Path) -> tuple[Path, int | None]:
    path = tree / LOCOMO / "corpus.jsonl"
    return path, _append(path, '["synthetic"]')


def _case_malformed_tsv(tree: Path) -> tuple[Path, int | None]:
    path = tree / PROCED / "hard" / "qrels.tsv"
    return path, _append(path, "synthetic-s0q0 synthetic-d1 1")


def _case_missing_field(tree: Path) -> tuple[Path, int | None]:
    path = tree / PROCED / "easy" / "queries.jsonl"
    return path, _append(path, '{"id": "synthetic-extra"}')


def _case_bad_score(tree: Path) -> tuple[Path, int | None]:
    path = tree / PROCED / "easy" / "qrels.tsv"
    return path, _append(path, "synthetic-s0q0\tsynthetic-d1\t0.5")


def _case_duplicate_id(tree: Path) -> tuple[Path, int | None]:
    path = tree / PROCED / "corpus.jsonl"
    first = path.read_text().splitlines()[0]
    return path, _append(path, first)


def _case_empty_queries(tree: Path) -> tuple[Path, int | None]:
    path = tree / PROCED / "medium" / "queries.jsonl"
    path.write_text("")
    (tree / PROCED / "medium" / "qrels.tsv").write_text("")
    return path, None


def _case_empty_corpus(tree: Path) -> tuple[Path, int | None]:
    path = tree / "Semantic/QASPER/corpus.jsonl"
    path.write_text("\n")
    return path, None


def _case_query_without_qrels(tree: Path) -> tuple[Path, int | None]:
    path = tree / PROCED / "easy" / "queries.jsonl"
    return path, _append(path, '{"id": "synthetic-lonely", "text": "no judgement"}')


def _case_missing_candidates(tree: Path) -> tuple[Path, int | None]:
    path = tree / LOCOMO / "candidates.jsonl"  # LoCoMo's rule has candidates at the dataset root
    path.unlink()
    return path, None


ERROR_CASES: dict[str, tuple[str, Callable[[Path], tuple[Path, int | None]], str]] = {
    "missing_file": ("missing_file", _case_missing_file, "file not found"),
    "malformed_json": ("malformed_line", _case_malformed_json, "malformed JSON"),
    "not_an_object": ("malformed_line", _case_not_an_object, "expected a JSON object"),
    "malformed_tsv": ("malformed_line", _case_malformed_tsv, "expected 3 tab-separated fields"),
    "missing_field": ("missing_field", _case_missing_field, "missing field 'text'"),
    "bad_score": ("bad_score", _case_bad_score, "score '0.5' is not an integer"),
    "duplicate_id": ("duplicate_id", _case_duplicate_id, "duplicate document id"),
    "empty_queries": ("empty_subset", _case_empty_queries, "no queries"),
    "empty_corpus": ("empty_subset", _case_empty_corpus, "the corpus has no documents"),
    "query_without_qrels": ("query_without_qrels", _case_query_without_qrels, "'synthetic-lonely' has no qrels"),
    "missing_candidates": ("missing_candidates_file", _case_missing_candidates, "--allow-missing-candidates"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_each_error_class_names_file_and_line(tree: Path, case: str) -> None:
    kind, make, message = ERROR_CASES[case]
    path, line = make(tree)
    report = validate(tree)
    assert not report.ok
    problem = _only(report, kind)
    assert problem.is_error and problem.path == str(path) and problem.line == line
    where = f"{path}:{line}" if line else f"{path}"
    assert str(problem).startswith(f"{where}: ") and message in str(problem)


def test_all_error_kinds_are_exercised() -> None:
    assert {kind for kind, _, _ in ERROR_CASES.values()} | {"missing_dataset"} == set(ERRORS)


def test_many_problems_in_one_pass(tree: Path) -> None:
    for case in ("malformed_json", "bad_score", "duplicate_id", "missing_file"):
        ERROR_CASES[case][1](tree)
    report = validate(tree)
    assert {p.kind for p in report.errors} == {"malformed_line", "bad_score", "duplicate_id", "missing_file"}


def test_warnings_are_counted_not_errors(tree: Path) -> None:
    qrels = tree / PROCED / "easy" / "qrels.tsv"
    doc_line = _append(qrels, "synthetic-s0q0\tsynthetic-gone\t1")
    _append(qrels, "synthetic-s0q1\tsynthetic-gone\t1")  # the same missing document: one warning
    query_line = _append(qrels, "synthetic-nobody\tsynthetic-d0\t1")
    cands = tree / LOCOMO / "candidates.jsonl"
    cand_line = _append(cands, '{"scene_id": "synthetic_c9", "candidate_doc_ids": ["synthetic_c9_nope"]}')
    (tree / "Semantic/QASPER/candidates.jsonl").unlink()
    report = validate(tree, allow_missing_candidates=True)
    assert report.ok and {p.kind for p in report.warnings} == set(WARNINGS)
    unknown_doc = _only(report, "qrels_unknown_doc")
    assert (unknown_doc.path, unknown_doc.line) == (str(qrels), doc_line) and "(2 qrels rows)" in unknown_doc.message
    assert _only(report, "qrels_unknown_query").line == query_line
    assert _only(report, "candidate_unknown_doc").line == cand_line
    assert _only(report, "no_candidates_file").path == str(tree / "Semantic/QASPER/candidates.jsonl")
    assert report.count("scene_without_candidates") == 1  # LoCoMo; QASPER has no candidates file now
    summary = next(d for d in report.datasets if d.name == "Proced_mem_bench")
    assert summary.errors == 0 and summary.warnings == {"qrels_unknown_doc": 1, "qrels_unknown_query": 1}


def test_cli_exit_codes(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["validate", "--data", str(tree)]) == 0
    out = capsys.readouterr().out
    assert "total: 3 datasets checked (9 subsets), 19 skipped, 0 errors, 2 warnings" in out
    path, line = _case_bad_score(tree)
    assert cli(["validate", "--data", str(tree), "--type", "procedural"]) == 1
    out = capsys.readouterr().out
    assert f"{path}:{line}: score '0.5' is not an integer" in out.splitlines()
    assert "Proced_mem_bench  3 subsets" in out and "FAILED" in out


def test_real_data_passes_with_known_warnings(real_data: Path) -> None:
    report = validate(real_data)
    assert report.errors == []
    by_dataset = {d.name: d for d in report.datasets if not d.skipped}
    assert {"KnowMeBench", "LoCoMo", "Gorilla", "Proced_mem_bench"} <= set(by_dataset)
    assert by_dataset["KnowMeBench"].warnings["qrels_unknown_doc"] == 53  # as in the official data
    assert by_dataset["LoCoMo"].warnings["qrels_unknown_doc"] == 2
    assert sum(by_dataset["Gorilla"].warnings.values()) == 0
