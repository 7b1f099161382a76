"""Efficiency as a result: what running a model cost, recorded per subset and summed per dataset.

Each subset's provenance gets an ``efficiency`` block; the dataset's provenance the same block over its
subsets (``combine``), and ``lmeb table --view efficiency`` / the leaderboard sum it per model:

- ``texts``: texts run through the model: unique texts encoded (encoder; vectors from the memory or
  disk cache are not counted), documents indexed + queries (searcher, BM25), pairs scored (reranker);
- ``tokens``: tokens of those texts where the model counts them (its ``stats["tokens"]``: attention-mask
  tokens of the sentence-transformers and transformers encoders, the API's usage), else null (BM25);
- ``seconds``: wall seconds in the model (the ``encode`` stage, ``search`` for searchers and rerankers);
- ``texts_per_s``, ``tokens_per_s``, ``seconds_per_1k_texts``: from those sums (null without texts);
- ``peak_rss_mb``: the process's peak resident memory so far (``resource.getrusage``), the max when summed;
- ``peak_gpu_mb``: ``torch.cuda.max_memory_allocated`` on the model's CUDA device since the dataset began
  (only on CUDA);
- ``fusion_seconds`` (hybrids only, ``lmeb.engine.hybrid``): the part of ``seconds`` spent fusing the parts'
  lists (the rest is the parts' own model time; each part's block is in the subset's ``parts`` list);
- ``device`` and ``parameters`` (``sum(p.numel())`` of the model's torch modules, when it has any).

Only the model's own counters (``stats``, the ``model_counts`` contract) and the engine's stage times are
read: no side channel. ``model_counts`` (per subset, ``{role: {counter: n}}`` with role ``model`` or
``reranker``: API requests/tokens/retries, KaLM pairs...) add up with ``add_counts``.
"""

from __future__ import annotations

import contextlib
import resource
import sys
from collections.abc import Iterable
from typing import Any


def peak_rss_mb() -> float:
    """The process's peak resident set size in MiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def _cuda() -> Any | None:
    """torch, if it is already imported and CUDA is initialised (never imports torch or starts CUDA)."""
    torch = sys.modules.get("torch")
    try:
        return torch if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized() else None
    except Exception:  # a broken CUDA set-up must not fail a run over a memory statistic
        return None


def _cuda_device(device: str | None) -> str | None:
    """The CUDA device a model runs on (``cuda:1``), None for torch's current one (other or unknown devices)."""
    return device if device and str(device).startswith("cuda") else None


def reset_gpu_peak(device: str | None = None) -> None:
    """Start a new GPU memory peak on ``device`` (called per dataset); nothing without CUDA."""
    torch = _cuda()
    if torch is not None:
        with contextlib.suppress(Exception):
            torch.cuda.reset_peak_memory_stats(_cuda_device(device))


def peak_gpu_mb(device: str | None = None) -> float | None:
    """Peak GPU memory allocated by torch on ``device`` (a ``cuda:N`` the model runs on, else the current
    CUDA device) since the last reset, in MiB; None without CUDA."""
    torch = _cuda()
    if torch is None:
        return None
    try:
        return round(torch.cuda.max_memory_allocated(_cuda_device(device)) / 2**20, 1)
    except Exception:
        return None


def _modules(model: Any) -> list[Any]:
    """The torch modules a model adapter holds: itself, its ``.model``, a wrapped object (or its ``.model``)."""
    obj = getattr(model, "obj", None)
    candidates = (model, getattr(model, "model", None), obj, getattr(obj, "model", None))
    return [c for c in candidates if callable(getattr(c, "parameters", None)) and hasattr(c, "named_parameters")]


def parameter_count(model: Any) -> int | None:
    """``sum(p.numel())`` over the model's torch parameters (the first module found), else None (BM25, APIs)."""
    for module in _modules(model):
        try:
            return int(sum(p.numel() for p in module.parameters()))
        except Exception:
            continue
    return None


def device_of(model: Any) -> str:
    """The device the model runs on (its ``device`` attribute), ``cpu`` when it names none."""
    device = getattr(model, "device", None) or getattr(getattr(model, "obj", None), "device", None)
    return str(device) if device else "cpu"


def _rate(amount: float | None, seconds: float) -> float | None:
    return round(amount / seconds, 2) if amount and seconds > 0 else None


def block(texts: int | None, tokens: int | None, seconds: float, device: str, parameters: int | None,
          rss_mb: float | None = None, gpu_mb: float | None = None) -> dict[str, Any]:
    """The ``efficiency`` block of one subset (or of a sum, with the rates recomputed from the sums)."""
    return {
        "texts": texts,
        "tokens": tokens,
        "seconds": round(seconds, 4),
        "texts_per_s": _rate(texts, seconds),
        "tokens_per_s": _rate(tokens, seconds),
        "seconds_per_1k_texts": round(1000.0 * seconds / texts, 4) if texts else None,
        "peak_rss_mb": rss_mb,
        "peak_gpu_mb": gpu_mb,
        "device": device,
        "parameters": parameters,
    }


def combine(blocks: Iterable[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Blocks summed: counts and seconds added (a count is null only if null everywhere), peaks maxed,
    rates recomputed, devices joined; None when no block is given (results written before this existed)."""
    given = [b for b in blocks if isinstance(b, dict)]
    if not given:
        return None

    def total(key: str) -> Any:
        values = [b.get(key) for b in given if b.get(key) is not None]
        return sum(values) if values else None

    def peak(key: str) -> float | None:
        values = [b[key] for b in given if b.get(key) is not None]
        return max(values) if values else None

    devices = sorted({str(b["device"]) for b in given if b.get("device")})
    parameters = next((b["parameters"] for b in given if b.get("parameters") is not None), None)
    out = block(total("texts"), total("tokens"), float(total("seconds") or 0.0), ",".join(devices) or "cpu",
                parameters, peak("peak_rss_mb"), peak("peak_gpu_mb"))
    if total("fusion_seconds") is not None:  # a hybrid (lmeb.engine.hybrid): its fusion's share of the seconds
        out["fusion_seconds"] = round(total("fusion_seconds"), 4)
    return out


def add_counts(*counts: dict[str, dict[str, int]] | None) -> dict[str, dict[str, int]]:
    """``model_counts`` blocks summed per role and counter (None or {} adds nothing; roles keep their order)."""
    total: dict[str, dict[str, int]] = {}
    for one in counts:
        for role, stats in (one or {}).items():
            mine = total.setdefault(role, {})
            for key, value in stats.items():
                mine[key] = mine.get(key, 0) + int(value)
    return total


def model_texts(model_type: str, encoded: int, counts: dict[str, int], documents: int, queries: int) -> int | None:
    """Texts run through the model in one subset (see the module docstring), from the engine's counts."""
    if model_type == "encoder":
        return encoded
    if model_type == "searcher":
        indexed = counts.get("corpora_indexed")
        return (documents if indexed is None or indexed > 0 else 0) + queries
    return counts.get("pairs")
