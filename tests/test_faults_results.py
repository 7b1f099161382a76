"""Results files under faults (issue 11): concurrent runs, hand edits, kills and Ctrl-C at every write,
a deleted sidecar, a full disk. Each test injects the fault and checks that the numbers a rerun leaves
are those of a clean run and that only what the fault touched is recomputed."""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import lmeb
import lmeb.results.dataset_result as results_module
from lmeb.cli import main as cli_main
from lmeb.engine.metrics import column_means, evaluate
from lmeb.errors import LmebError
from lmeb.reporter import Reporter
from lmeb.results.consistency import ROUNDED_TOLERANCE, TOLERANCE, subset_problem
from lmeb.results.dataset_result import PER_QUERY_SUFFIX, backup_path, read_dataset_result
from lmeb.results.store import ResultsStore

GORILLA = ("Procedural", "Gorilla")
SUBSETS = ["gorilla_huggingface", "gorilla_pytorch", "gorilla_tensor"]  # registry order


def run_cli(*argv: object) -> int:
    return cli_main([str(a) for a in argv])


def gorilla_only(sample_data: Path, root: Path) -> Path:
    """A data root holding only the sample's Gorilla (three subsets)."""
    shutil.copytree(sample_data.joinpath(*GORILLA), root.joinpath(*GORILLA))
    return root


@pytest.fixture
def data(sample_data: Path, tmp_path: Path) -> Path:
    return gorilla_only(sample_data, tmp_path / "data")


def bm25(data: Path, out: Path, *extra: object) -> int:
    return run_cli("run", "--model", "bm25", "--tasks", "Gorilla", "--data", data, "--output", out, "--no-cache",
                   "--no-progress", *extra)


def main_file(out: Path) -> Path:
    return out / "bm25" / "wo_inst" / "Gorilla.json"


def numbers(path: Path) -> tuple[list[dict], dict]:
    """What must not change: every entry's metrics (not its timing) and the per-query sidecar."""
    entries = [{k: v for k, v in e.items() if k != "evaluation_time"}
               for e in json.loads(path.read_text())["scores"]["test"]]
    return entries, json.loads(path.with_suffix(PER_QUERY_SUFFIX).read_text())


@pytest.fixture(scope="module")
def clean(sample_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict]:
    """The numbers of an uninterrupted run (of its own copy of the data: one run serves the module)."""
    root = tmp_path_factory.mktemp("clean")
    assert bm25(gorilla_only(sample_data, root / "data"), root / "out") == 0
    return numbers(main_file(root / "out"))


def kept_and_run(stdout: str) -> str:
    """The summary's subsets cell of Gorilla: '<run>/<total> (<kept> kept)'."""
    line = next(line for line in stdout.splitlines() if line.startswith("Gorilla"))
    return line.split("  ", 1)[1].strip().split("  ")[0]


# ------------------------------------------------------------------------------------------------ item 1
def test_two_runs_on_disjoint_subsets_into_one_output_both_keep_theirs(data, tmp_path, clean, monkeypatch):
    """Both runs read the (empty) file before either writes, the race that lost one run's subsets."""
    out = tmp_path / "out"
    both_read = threading.Barrier(2, timeout=60)
    previous = ResultsStore.previous

    def read_then_wait(self, *args, **kwargs):
        found = previous(self, *args, **kwargs)
        both_read.wait()
        return found

    monkeypatch.setattr(ResultsStore, "previous", read_then_wait)
    errors: list[BaseException] = []

    def one(subsets: str) -> None:
        try:
            lmeb.evaluate("bm25", tasks=subsets, data=data, output=out, cache_dir=None,
                          reporter=Reporter(lambda m: None))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(f"Gorilla/{SUBSETS[0]},Gorilla/{SUBSETS[2]}",)),
               threading.Thread(target=one, args=(f"Gorilla/{SUBSETS[1]}",))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert numbers(main_file(out)) == clean  # all three subsets, registry order, identical numbers


def test_a_lone_run_does_not_reread_its_sidecar_after_each_subset(data, tmp_path, clean, monkeypatch):
    """The check for subsets another run wrote meanwhile reads the main file; the per-query sidecar only
    when that file names a subset this run does not have (the test above covers that case)."""
    import lmeb.results.store as store_module

    reads: list[bool] = []
    real = store_module.read_dataset_result

    def counted(path, per_query=False, strict=True):
        reads.append(per_query)
        return real(path, per_query=per_query, strict=strict)

    monkeypatch.setattr(store_module, "read_dataset_result", counted)
    out = tmp_path / "out"
    assert bm25(data, out) == 0
    assert reads == [False, False]  # before the 2nd and 3rd subsets' writes; no sidecar read
    assert numbers(main_file(out)) == clean


def test_the_lock_serialises_writers_across_processes(tmp_path):
    path = tmp_path / "m" / "wo_inst" / "Gorilla.json"
    code = ("import sys, time; from lmeb.results.dataset_result import results_lock\n"
            "with results_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(30)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with (pytest.raises(LmebError, match=r"Gorilla\.json: another lmeb run has held its lock for 0s"),
              results_module.results_lock(path, timeout=0.2)):
            pass
    finally:
        holder.kill()
        holder.wait(10)
    with results_module.results_lock(path, timeout=5):  # released with its process
        pass


# ------------------------------------------------------------------------------------------------ item 4
def test_scores_are_the_means_of_the_per_query_values_as_evaluate_computes_them():
    qrels = {"q1": {"d1": 1, "d2": 2}, "q2": {"d3": 1}, "q3": {"d9": 0}, "q4": {"d1": 1}}  # q4 is not in the run
    run = {"q1": {"d2": 0.9, "d1": 0.8, "d5": 0.7}, "q2": {"d1": 0.5, "d3": 0.4}, "q3": {"d1": 0.3}}
    ev = evaluate(qrels, run)
    ids = list(ev.per_query["ndcg_at_10"])
    assert ev.unranked == ["q4"]
    means = column_means(ids, ev.columns(ids), ev.unranked)
    assert set(means) == set(ev.scores)
    for metric, value in ev.scores.items():
        assert abs(means[metric] - value) <= (ROUNDED_TOLERANCE if metric != "mrr_at_10" else TOLERANCE), metric


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda e: e.update(ndcg_at_10=round(e["ndcg_at_10"] + 0.01, 5)), "ndcg_at_10 is"),
    (lambda e: e.update(mrr_at_10=str(e["mrr_at_10"])), 'mrr_at_10 is "'),
    (lambda e: e.update(main_score=0.99), "main_score is 0.99"),
    (lambda e: e.pop("recall_at_5"), "recall_at_5 is missing"),
])
def test_a_hand_edited_entry_is_re_evaluated_with_a_warning(data, tmp_path, clean, capsys, edit, reason):
    out = tmp_path / "out"
    assert bm25(data, out) == 0
    path = main_file(out)
    obj = json.loads(path.read_text())
    edit(obj["scores"]["test"][1])
    path.write_text(json.dumps(obj))
    capsys.readouterr()
    assert bm25(data, out) == 0
    captured = capsys.readouterr()
    warning = [line for line in captured.err.splitlines() if "warning" in line]
    assert len(warning) == 1 and f"{path}: subset {SUBSETS[1]}: {reason}" in warning[0]
    assert warning[0].endswith("; will be re-evaluated")
    assert kept_and_run(captured.out) == "1/3 (2 kept)"
    assert numbers(path) == clean


def test_table_refuses_a_score_that_is_not_a_number_in_one_line(data, tmp_path, capsys):
    out = tmp_path / "out"
    assert bm25(data, out) == 0
    path = main_file(out)
    obj = json.loads(path.read_text())
    obj["scores"]["test"][2]["ndcg_at_10"] = "0.5"
    path.write_text(json.dumps(obj))
    capsys.readouterr()
    assert run_cli("table", out, "--view", "subsets") == 2  # never an average over fewer subsets than counted
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"lmeb table: error: {path}: scores.test entry 2 ({SUBSETS[2]}): ndcg_at_10 is \"0.5\", not a "
                   "number (a damaged or hand-edited file)"]


def test_an_edited_per_query_value_breaks_the_recorded_sha256_and_is_redone(data, tmp_path, clean, capsys):
    out = tmp_path / "out"
    assert bm25(data, out) == 0
    side = main_file(out).with_suffix(PER_QUERY_SUFFIX)
    blocks = json.loads(side.read_text())
    blocks[SUBSETS[0]]["metrics"]["ndcg_at_10"][0] = 1.0
    side.write_text(json.dumps(blocks))
    assert subset_problem(read_dataset_result(main_file(out), per_query=True, strict=False).subsets[SUBSETS[0]])
    capsys.readouterr()
    assert bm25(data, out) == 0
    captured = capsys.readouterr()
    assert f"{side}: does not match Gorilla.json" in captured.err and kept_and_run(captured.out) == "3/3"
    assert numbers(main_file(out)) == clean


# --------------------------------------------------------------------------------------- items 5 and 6
HOOK = """
import os, signal, sys
fault, at = sys.argv[1], int(sys.argv[2])
real, calls = os.replace, [0]

def replace(src, dst):  # the rankings sidecar and the results pair are written with os.replace only (cache off)
    calls[0] += 1
    if calls[0] == at and fault == "kill":
        os._exit(137)
    if calls[0] == at and fault == "sigint":
        os.kill(os.getpid(), signal.SIGINT)
    real(src, dst)
    if calls[0] == at and fault == "kill-after":
        os._exit(137)

os.replace = replace
from lmeb.cli import main
sys.exit(main(sys.argv[3:]))
"""
# os.replace calls: subset 1 writes its rankings (1), sidecar (2) and main (3); subset 2 writes its rankings (4),
# keeps the old sidecar as the backup (5), writes the new sidecar (6) and main (7); so a fault before 1-3 loses
# nothing finished, before 4-7 subset 2 (in progress), after 7 nothing.
FAULTS = [("kill", 1, "3/3"), ("kill", 3, "3/3"), ("kill", 4, "2/3 (1 kept)"), ("kill", 5, "2/3 (1 kept)"),
          ("kill", 6, "2/3 (1 kept)"), ("kill", 7, "2/3 (1 kept)"), ("kill-after", 7, "1/3 (2 kept)"),
          ("sigint", 6, "2/3 (1 kept)")]


def faulty_run(data: Path, out: Path, fault: str, at: int) -> subprocess.CompletedProcess:
    argv = ["run", "--model", "bm25", "--tasks", "Gorilla", "--data", str(data), "--output", str(out),
            "--no-cache", "--no-progress"]
    return subprocess.run([sys.executable, "-c", HOOK, fault, str(at), *argv], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "at", "summary"), FAULTS)
def test_a_kill_or_ctrl_c_at_each_write_loses_at_most_the_subset_in_progress(data, tmp_path, clean, capsys,
                                                                             fault, at, summary):
    out = tmp_path / "out"
    proc = faulty_run(data, out, fault, at)
    if fault == "sigint":
        assert proc.returncode == 130 and proc.stderr.strip() == "lmeb run: interrupted"  # no traceback wall
    else:
        assert proc.returncode == 137
    if main_file(out).is_file():  # what a reader (table, compare) sees meanwhile is a consistent pair
        back = read_dataset_result(main_file(out), per_query=True)
        assert back.subsets and all(subset_problem(s) is None for s in back.subsets.values())
    capsys.readouterr()
    assert bm25(data, out) == 0
    captured = capsys.readouterr()
    assert kept_and_run(captured.out) == summary and "warning" not in captured.err
    assert numbers(main_file(out)) == clean
    assert not backup_path(main_file(out)).exists()
    assert not [p for p in main_file(out).parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow  # a real SIGINT in a subprocess; in-process: tests/test_runner.py's killed-run test
def test_ctrl_c_between_subsets_exits_130_in_one_line_and_the_rerun_resumes(data, tmp_path, clean, capsys):
    out = tmp_path / "out"
    proc = faulty_run(data, out, "sigint", 4)  # before subset 2 is written: subset 1 is in the file
    assert proc.returncode == 130 and proc.stderr.strip() == "lmeb run: interrupted"
    assert list(read_dataset_result(main_file(out), per_query=True).subsets) == [SUBSETS[0]]
    assert bm25(data, out) == 0
    assert kept_and_run(capsys.readouterr().out) == "2/3 (1 kept)"
    assert numbers(main_file(out)) == clean


@pytest.mark.parametrize("failing", ["sidecar", "main"])
def test_a_full_disk_is_one_line_and_the_file_keeps_its_subsets(data, tmp_path, clean, capsys, monkeypatch,
                                                                failing):
    out = tmp_path / "out"
    writes = {"sidecar": 0, "main": 0}
    real_bytes, real_json = Path.write_bytes, results_module.atomic_write_json

    def sidecar(self, payload):
        writes["sidecar"] += 1
        if failing == "sidecar" and writes["sidecar"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_bytes(self, payload)

    def main(path, obj):
        writes["main"] += 1
        if failing == "main" and writes["main"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_json(path, obj)

    monkeypatch.setattr(Path, "write_bytes", sidecar)
    monkeypatch.setattr(results_module, "atomic_write_json", main)
    capsys.readouterr()
    assert bm25(data, out) == 2
    path = main_file(out)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"lmeb run: error: {path}: cannot write results (No space left on device); it keeps the subsets "
                   "written before, so rerun to resume once it is writable"]
    assert list(read_dataset_result(path, per_query=True).subsets) == [SUBSETS[0]]  # the previous pair, intact
    monkeypatch.undo()
    assert bm25(data, out) == 0
    assert kept_and_run(capsys.readouterr().out) == "2/3 (1 kept)"
    assert numbers(path) == clean


# ----------------------------------------------------------------------------------------------- item 15
def test_a_deleted_sidecar_is_named_by_compare_and_rebuilt_by_the_rerun(data, tmp_path, clean, capsys):
    out = tmp_path / "out"
    assert bm25(data, out) == 0
    assert bm25(data, out, "--name", "other") == 0
    side = main_file(out).with_suffix(PER_QUERY_SUFFIX)
    side.unlink()
    capsys.readouterr()
    assert run_cli("compare", "bm25", "other", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{side} missing" in err[0]
    assert bm25(data, out) == 0
    captured = capsys.readouterr()
    assert f"{side} is missing; will be re-evaluated" in captured.err and kept_and_run(captured.out) == "3/3"
    assert numbers(main_file(out)) == clean
    assert run_cli("compare", "bm25", "other", out) == 0
