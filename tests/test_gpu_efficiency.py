"""peak_gpu_mb is read on the CUDA device the model runs on (``cuda:1``), not torch's current device.

No GPU here: a stand-in ``torch`` module (only what ``lmeb.engine.efficiency`` calls) records which device each
call names."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from lmeb.engine import efficiency


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    calls: list[object] = []
    peaks = {None: 1.0 * 2**20, "cuda": 1.0 * 2**20, "cuda:1": 300.0 * 2**20}  # None, "cuda": the current device

    def max_memory_allocated(device: object = None) -> float:
        calls.append(("peak", device))
        return peaks[device]

    cuda = SimpleNamespace(is_available=lambda: True, is_initialized=lambda: True,
                           max_memory_allocated=max_memory_allocated,
                           reset_peak_memory_stats=lambda device=None: calls.append(("reset", device)))
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=cuda))
    return calls


def test_peak_is_read_on_the_models_cuda_device(fake_cuda: list[object]) -> None:
    efficiency.reset_gpu_peak("cuda:1")
    assert efficiency.peak_gpu_mb("cuda:1") == 300.0
    assert efficiency.peak_gpu_mb("cuda") == 1.0 and efficiency.peak_gpu_mb() == 1.0
    assert efficiency.peak_gpu_mb("cpu") == 1.0  # a model that names no CUDA device: the current one, as before
    assert fake_cuda[:2] == [("reset", "cuda:1"), ("peak", "cuda:1")]


def test_no_cuda_no_peak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: False)))
    assert efficiency.peak_gpu_mb("cuda:1") is None
    efficiency.reset_gpu_peak("cuda:1")  # nothing to reset, no error
