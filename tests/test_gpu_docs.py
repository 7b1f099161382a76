"""Every command in docs/gpu.md is parsed by the real parser of the program it names, and run where it is
cheap here (the device check's --only line and the benchmark at a few texts, both slow; the shell script's
cheapest rows, fast); the out-of-memory
error line the page shows is the one the code writes."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from doc_blocks import bodies

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "gpu.md").read_text(encoding="utf-8")
# what each docs command needs that this machine lacks (parse-only); the others run here
PARSE_ONLY = {
    "lmeb run": "a hub model (no network here) on a GPU",
    "scripts/device_check.sh": "the full check takes minutes on a CPU (the --only line runs; "
                               "tests/test_device_check.py runs each check)",
    "benchmarks/bench_gpu.py": "minutes each; test_bench_runs_at_a_few_texts runs the default line at 4 texts",
}


def commands() -> list[list[str]]:
    blocks = bodies(DOC, "bash")
    return [shlex.split(line) for block in blocks for line in block.splitlines() if line.strip()]


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_command_parses() -> None:
    from lmeb.cli import build_parser

    parsers = {"scripts/device_check.sh": load(REPO / "scripts" / "device_check.py").build_parser(),
               "benchmarks/bench_gpu.py": load(REPO / "benchmarks" / "bench_gpu.py").build_parser()}
    seen = set()
    for argv in commands():
        if argv[0] == "lmeb":
            build_parser().parse_args(argv[1:])
            seen.add("lmeb run")
        elif argv[0] == "scripts/device_check.sh":
            args = parsers[argv[0]].parse_args(argv[1:])
            assert args.only is None or set(args.only.split(",")) <= set(load(REPO / "scripts" /
                                                                             "device_check.py").CHECKS)
            seen.add(argv[0])
        else:
            assert argv[:2] == [".venv/bin/python", "benchmarks/bench_gpu.py"], argv
            parsers[argv[1]].parse_args(argv[2:])
            seen.add(argv[1])
    assert seen == set(PARSE_ONLY)


@pytest.mark.slow  # a fresh process loading torch, transformers and the tiny KaLM: 10-30 s on a busy machine
def test_device_check_only_line_runs(shared_dir: Path) -> None:
    argv = next(a for a in commands() if a[0] == "scripts/device_check.sh" and "--only" in a)
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(REPO / argv[0]), *argv[1:], "--cpu", "--shared", str(shared_dir)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "| kalm tiny vs reference (cpu) |" in done.stdout and "| pass |" in done.stdout
    assert "| oom backoff (memory fraction) | no CUDA device | - | skip |" in done.stdout


@pytest.mark.slow
def test_bench_runs_at_a_few_texts(capsys: pytest.CaptureFixture, real_data: Path) -> None:
    argv = next(a for a in commands() if a[1:2] == ["benchmarks/bench_gpu.py"])
    bench = load(REPO / "benchmarks" / "bench_gpu.py")
    assert bench.main([*argv[2:], "--data", str(real_data), "--n", "4", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "fp16 on CPU" in out and re.search(r"end to end / raw forward: fp32 \d\.\d\d", out)


def test_shell_script_runs_the_python() -> None:
    """The cheap CPU path through the shell script: CUDA-only rows, one line each."""
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(REPO / "scripts" / "device_check.sh"), "--cpu", "--only", "cuda_vs_cpu,oom"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("lmeb device check, ") and "CPU only (no CUDA device" in lines[0]
    assert lines[-2:] == ["| minilm cuda vs cpu | no CUDA device | - | skip |",
                          "| oom backoff (memory fraction) | no CUDA device | - | skip |"]


def test_the_error_line_shown_is_the_codes() -> None:
    torch = pytest.importorskip("torch")
    from lmeb.errors import LmebError
    from lmeb.models.oom import run_with_backoff

    def run(batch: list[int]) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(LmebError) as exc:
        run_with_backoff([0], run, stats={}, name="all-MiniLM-L6-v2", length=lambda _: "512 tokens")
    shown = re.search(r"```text\nerror: (.*)\n```", DOC).group(1)
    before, after = shown.split("(CUDA out of memory. ...)")
    assert str(exc.value).startswith(before) and str(exc.value).endswith(after)
