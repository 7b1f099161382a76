"""Out-of-memory backoff shared by every local adapter (sentence-transformers, transformers, KaLM, cross-encoders,
mteb models).

A batch that runs out of accelerator memory (``torch.cuda.OutOfMemoryError``, or MPS's "out of memory"
``RuntimeError``) is split in two halves, the cache is freed, and each half is retried the same way, down
to one text; the other batches keep their size. The halves are run in order and their results joined, so
the caller gets one result per input in the same order as without the error. One text that still does
not fit is one ``LmebError`` line naming the model and the text's length. Each split adds one to the
adapter's ``stats["oom_backoffs"]`` (created at the first split), so the run's provenance records it
(``model_counts.model.oom_backoffs``, ``lmeb.engine.efficiency``).

A model that batches inside one library call lmeb cannot split (an mteb model's ``encode`` over a
DataLoader) retries the whole call with half the batch size instead (``retry_with_smaller_batches``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from lmeb.errors import LmebError

T = TypeVar("T")
R = TypeVar("R")
OOM_KEY = "oom_backoffs"


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA's ``OutOfMemoryError`` and the ``RuntimeError`` MPS (and old CUDA builds) raise."""
    torch = sys.modules.get("torch")
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None) if torch is not None else None
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_accelerator_memory() -> None:
    """Return torch's cached blocks to the device (CUDA, MPS); nothing when neither is in use."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    with contextlib.suppress(Exception):
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    with contextlib.suppress(Exception):
        if torch.backends.mps.is_available():
            torch.mps.empty_cache()


def _oom_detail(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:120]


def run_with_backoff(items: Sequence[T], run: Callable[[list[T]], R], *, stats: dict[str, Any], name: str,
                     length: Callable[[T], str]) -> list[R]:
    """``run`` over ``items`` as one batch, split in halves on out-of-memory (recursively, in order).

    Returns the results of the batches actually run, in input order (one result when nothing failed).
    ``length(item)`` describes one item for the error at batch size 1 (e.g. ``"812 tokens"``).
    """
    pending: list[list[T]] = [list(items)]
    results: list[R] = []
    while pending:
        batch = pending.pop()
        try:
            results.append(run(batch))
            continue
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            detail = _oom_detail(exc)
        # out of the except block: the exception's frames (and the tensors they hold) can be freed now
        free_accelerator_memory()
        if len(batch) == 1:
            raise LmebError(f"{name}: out of memory on one text of {length(batch[0])} even at batch size 1 "
                            f"({detail}); lower max_length or use a device with more memory") from None
        stats[OOM_KEY] = int(stats.get(OOM_KEY, 0)) + 1
        half = (len(batch) + 1) // 2
        pending += [batch[half:], batch[:half]]  # a stack: the first half runs next
    return results


def retry_with_smaller_batches(run: Callable[[int], R], batch_size: int, *, stats: dict[str, Any], name: str,
                               length: Callable[[], str]) -> R:
    """``run(batch_size)``, again with half the batch size on out-of-memory, down to 1 (each retry counted).

    For calls that batch inside a library (the whole call is repeated); ``length()`` describes the longest
    text for the error at batch size 1.
    """
    size = max(1, int(batch_size))
    while True:
        try:
            return run(size)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            detail = _oom_detail(exc)
        free_accelerator_memory()
        if size == 1:
            raise LmebError(f"{name}: out of memory on a text of {length()} even at batch size 1 "
                            f"({detail}); lower max_length or use a device with more memory") from None
        stats[OOM_KEY] = int(stats.get(OOM_KEY, 0)) + 1
        size //= 2
