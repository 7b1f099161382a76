"""The device check (scripts/device_check.py, .sh) on the CPU: the CUDA-only checks say "no CUDA device" in
one row each, the others run for real (tiny KaLM vs its reference scores, MiniLM ndcg@10 in fp32 and bf16,
bench_gpu's ratio on a few texts) and everything lands in one table with the date and the device. The shell
script itself runs in tests/test_gpu_docs.py (the --only line of docs/gpu.md)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def device_check():
    spec = importlib.util.spec_from_file_location("device_check", REPO / "scripts" / "device_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def rows_of(out: str) -> dict[str, list[str]]:
    """{check: [result, value, status]} from the printed Markdown table."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 4 and cells[0] not in ("check", "---"):
            rows[cells[0]] = cells[1:]
    return rows


def test_cpu_path_cuda_rows_and_kalm(device_check, shared_dir: Path, capsys: pytest.CaptureFixture) -> None:
    code = device_check.main(["--cpu", "--only", "cuda_vs_cpu,kalm,ray,oom", "--shared", str(shared_dir)])
    out = capsys.readouterr().out
    assert code == 0
    header = out.splitlines()[0]
    assert re.match(r"lmeb device check, \d{4}-\d\d-\d\d \d\d:\d\d UTC, CPU only \(no CUDA device; ", header)
    rows = rows_of(out)
    assert rows["minilm cuda vs cpu"] == ["no CUDA device", "-", "skip"]
    assert rows["oom backoff (memory fraction)"] == ["no CUDA device", "-", "skip"]
    assert rows["ray 2 workers x 0.5 GPU"][2] == "skip"  # "ray not installed" or "no CUDA device"
    result, value, status = rows["kalm tiny vs reference (cpu)"]
    assert status == "pass" and "20 triples" in result and float(value) <= 1e-5


@pytest.mark.slow  # about 30 s: MiniLM loaded four times (ndcg fp32/bf16, bench fp32/bf16)
def test_precision_and_bench_rows(device_check, sample_data: Path, capsys: pytest.CaptureFixture) -> None:
    code = device_check.main(["--cpu", "--only", "precision,bench", "--data", str(sample_data),
                              "--dataset", "Proced_mem_bench", "--bench-n", "6"])
    rows = rows_of(capsys.readouterr().out)
    fp32 = float(rows["ndcg@10 fp32 (cpu)"][1])
    assert 0.0 <= fp32 <= 1.0
    assert rows["ndcg@10 fp16 (cpu)"][2] == "skip" and "no CUDA device" in rows["ndcg@10 fp16 (cpu)"][0]
    result, value, status = rows["ndcg@10 bf16 (cpu)"]
    delta = float(re.search(r"vs fp32 ([-+]\d\.\d+)", result).group(1))
    assert abs(float(value) - fp32 - delta) <= 1e-4  # the delta printed is bf16 minus fp32
    assert status == ("pass" if abs(delta) <= device_check.NDCG_TOLERANCE else "FAIL")
    assert code == (1 if status == "FAIL" else 0)
    result, value, status = rows["bench_gpu fp32 (cpu)"]
    assert status == "info" and "(6 texts)" in result and "peak GPU n/a" in result and float(value) > 0


def test_a_failing_check_is_one_row(device_check, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture) -> None:
    def broken(ctx):
        raise RuntimeError("driver\nexploded")

    monkeypatch.setitem(device_check.CHECKS, "oom", broken)
    assert device_check.main(["--cpu", "--only", "oom,cuda_vs_cpu"]) == 1
    rows = rows_of(capsys.readouterr().out)
    assert rows["oom"] == ["error: driver exploded", "-", "FAIL"]
    assert rows["minilm cuda vs cpu"][0] == "no CUDA device"
    assert device_check.main(["--only", "nope"]) == 2

