"""lmeb run through its CLI (in-process, and the real entry point in a subprocess): the shared selection
options, progress bars only on a terminal, and a summary that tells memory reuse from disk-cache hits."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lmeb.cli import main as cli

TWO_TYPES = ("Semantic/SciFact", "Procedural/Proced_mem_bench")  # small, one flat and one shared corpus


@pytest.fixture
def two_datasets(sample_data: Path, tmp_path: Path) -> Path:
    """A data root with one Semantic and one Procedural dataset of the sample (the other 20 absent)."""
    for folder in TWO_TYPES:
        shutil.copytree(sample_data / folder, tmp_path / "data" / folder)
    return tmp_path / "data"


def _run(*argv: str) -> subprocess.CompletedProcess:
    """``python -m lmeb run ...`` with stderr a pipe, as in ``make run > log 2>&1`` (not a terminal); the output
    decoded as is (no newline translation, so tqdm's carriage returns stay visible)."""
    done = subprocess.run([sys.executable, "-m", "lmeb", "run", *argv], capture_output=True, timeout=300)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def test_type_repeated_keeps_both_and_bars_are_off_without_a_terminal(
    two_datasets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-process (a subprocess only adds seconds of imports): stderr is pytest's capture, not a terminal like
    a pipe, and it keeps tqdm's carriage returns. The entry point with a pipe: the subprocess tests below."""
    out = tmp_path / "results"
    code = cli(["run", "--model", "bm25", "--type", "Semantic", "--type", "procedural", "--data", str(two_datasets),
                "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert sorted(p.name for p in (out / "bm25" / "wo_inst").glob("*.json") if "per_query" not in p.name) == [
        "LMEB_SciFact.json", "Proced_mem_bench.json"]
    assert "\r" not in err and "it/s" not in err and "subset/s" not in err
    assert "skipping 12 datasets not present" in err  # 6 Semantic + 6 Procedural, 2 present

    code = cli(["run", "--model", "bm25", "--type", "Semantic,Procedural", "--data", str(two_datasets), "--output",
                str(tmp_path / "forced"), "--progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "subset/s" in err and "\r" in err  # tqdm's redraws, asked for


def test_all_and_tasks_exclude_each_other_and_a_selection_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli(["run", "--model", "bm25", "--all", "--tasks", "LoCoMo"])
    assert "not allowed with argument" in capsys.readouterr().err
    assert cli(["run", "--model", "bm25"]) == 2
    assert "choose what to evaluate: --tasks A,B[/subset], --type TYPE or --all" in capsys.readouterr().err


def test_progress_default_follows_the_terminal() -> None:
    import argparse
    import io

    from lmeb.cli.options import progress_enabled

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert progress_enabled(argparse.Namespace(progress=None), Tty()) is True
    assert progress_enabled(argparse.Namespace(progress=None), io.StringIO()) is False
    assert progress_enabled(argparse.Namespace(progress=True), io.StringIO()) is True
    assert progress_enabled(argparse.Namespace(progress=False), Tty()) is False


def test_hub_download_bars_go_off_with_the_progress_bars() -> None:
    code = ("from lmeb.cli.options import quiet_library_bars; quiet_library_bars(); "
            "from huggingface_hub.utils import are_progress_bars_disabled; print(are_progress_bars_disabled())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"


def test_summary_tells_memory_reuse_from_disk_hits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A shared corpus reused within a run is not a cache hit: a fresh cache reads 0 from disk."""
    from lmeb.cli.run import print_summary
    from lmeb.embeddings.store import EmbedStats
    from lmeb.engine.runner import DatasetSummary

    fresh = DatasetSummary("LoCoMo", 5, subsets_run=5, texts=EmbedStats(requested=180, encoded=48, memory=132))
    rerun = DatasetSummary("LoCoMo", 5, subsets_run=5, texts=EmbedStats(requested=180, disk=48, memory=132))
    for summary, cells in ((fresh, ("48", "132", "0")), (rerun, ("0", "132", "48"))):
        print_summary([summary], "m", "wo_inst", 1.0)
        lines = capsys.readouterr().out.splitlines()
        assert lines[1].split()[4:7] == ["encoded", "reused", "disk"]
        assert lines[2].split()[4:7] == list(cells)
        assert f"{cells[0]} texts encoded, {cells[1]} reused in memory, {cells[2]} from the disk cache" in lines[3]
        assert len(lines) == 4  # models without counters: no counts line


def test_summary_sums_each_models_counts_over_the_datasets(capsys: pytest.CaptureFixture[str]) -> None:
    from lmeb.cli.run import print_summary
    from lmeb.engine.runner import DatasetSummary

    a = DatasetSummary("LoCoMo", 5, subsets_run=5,
                       model_counts={"model": {"requests": 400, "tokens": 1_200_000, "retries": 3},
                                     "reranker": {"pairs": 500, "ram_hits": 7}})
    b = DatasetSummary("Gorilla", 1, subsets_run=1, model_counts={"model": {"requests": 12, "tokens": 34_567}})
    kept = DatasetSummary("QASPER", 1, subsets_skipped=1)  # kept subsets cost nothing
    print_summary([a, b, kept], "m", "wo_inst", 1.0)
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "model counts: requests 412, tokens 1,234,567, retries 3",
        "reranker counts: pairs 500, ram hits 7"]


@pytest.mark.slow
def test_summary_counts_through_the_entry_point(sample_data: Path, minilm_path: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """MiniLM on LoCoMo (a corpus shared by 5 subsets): a fresh cache reads nothing from disk; a rerun only.
    The first run goes through the entry point; the rerun in-process (lmeb keeps no vectors in memory
    between runs, so it reads them all from the disk cache as a new process would)."""
    argv = ("--model", str(minilm_path), "--tasks", "LoCoMo", "--data", str(sample_data), "--output",
            str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache"))
    first = _run(*argv)
    assert first.returncode == 0, first.stderr
    row = next(line.split() for line in first.stdout.splitlines() if line.startswith("LoCoMo"))
    encoded, reused, disk = map(int, row[4:7])
    assert encoded > 0 and reused > 0 and disk == 0
    assert cli(["run", *argv, "--overwrite"]) == 0
    row = next(line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("LoCoMo"))
    assert list(map(int, row[4:7])) == [0, reused, encoded]


@pytest.mark.slow
def test_a_preset_in_the_papers_spelling_runs_under_its_preset_name(sample_data: Path, minilm_path: Path,
                                                                   tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """In-process: the entry point adds nothing here (the summary test above goes through it)."""
    code = cli(["run", "--preset", "BGE-M3 (dense)", "--model-path", str(minilm_path), "--precision", "fp32",
                "--max-length", "256", "--tasks", "Proced_mem_bench/easy", "--data", str(sample_data),
                "--output", str(tmp_path), "--no-cache"])
    done = capsys.readouterr()
    assert code == 0, done.err
    assert (tmp_path / "bge-m3" / "wo_inst" / "Proced_mem_bench.json").is_file()
    assert done.out.startswith("bge-m3 (wo_inst)")
