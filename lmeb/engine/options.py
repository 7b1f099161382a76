"""The values a run is built from, each checked once, where it is built (a bad one is one ``LmebError`` line).

* ``EvalOptions``: the less common choices of ``lmeb.evaluate`` (``options=``): which memory types,
  reranking depth and reranker options, what to redo, the scope of a growth run, where data is fetched
  from, and ``Scale`` (Ray workers).
* ``RunOptions``: one run as the runner and the results store read it: the data root (resolved and
  checked), the setting, the output folder (None: results stay in memory, nothing is written), the scope
  and the seed, the k values, the reranking depth, what to redo. Built by ``lmeb.evaluate`` once per scope;
  the layers below trust it and check nothing again.
* ``Scale``: where and how wide Ray runs the model (``lmeb.scale``).

The embedding cache folder and its layout belong to ``lmeb.cache.Cache``; log lines and
progress bars to ``lmeb.reporter.Reporter``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmeb.data.hub import SOURCES
from lmeb.data.reader import data_root
from lmeb.engine.growth import DEFAULT_SEED, POOL, check_scope, scopes_of
from lmeb.engine.metrics import K_VALUES
from lmeb.errors import LmebError
from lmeb.tasks.settings import check_setting


def _positive(value: float | None, what: str, whole: bool = False) -> None:
    if value is None:
        return
    kind = int if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value < (1 if whole else 0):
        raise LmebError(f"{what} must be {'a whole number >= 1' if whole else 'a number >= 0'}, got {value!r}")


@dataclass(frozen=True)
class Scale:
    """Ray workers for the model and the reranker (``lmeb.scale.pool.RayPool``), one replica each.

    ``address``: ``"auto"`` (``$RAY_ADDRESS`` or a local instance) or a cluster's ``HOST:PORT`` /
    ``ray://HOST:PORT``; ``workers`` (default one per GPU, else one per 2 CPU cores); ``timeout``: seconds
    to wait for an address to answer (default 30 or ``$LMEB_RAY_TIMEOUT``).
    """

    address: str = "auto"
    workers: int | None = None
    gpus_per_worker: float | None = None
    cpus_per_worker: float | None = None
    timeout: float | None = None

    def __post_init__(self) -> None:
        _positive(self.workers, "workers", whole=True)
        _positive(self.gpus_per_worker, "gpus_per_worker")
        _positive(self.cpus_per_worker, "cpus_per_worker")
        if self.timeout is not None and not (isinstance(self.timeout, (int, float)) and self.timeout > 0):
            raise LmebError(f"the Ray timeout must be a positive number of seconds, got {self.timeout!r}")

    def sizing(self) -> dict[str, Any]:
        """The pool's sizing keywords, and how long its address may stay silent."""
        return {"workers": self.workers, "gpus_per_worker": self.gpus_per_worker,
                "cpus_per_worker": self.cpus_per_worker, "timeout": self.timeout}


@dataclass(frozen=True)
class EvalOptions:
    """``lmeb.evaluate``'s less common choices (``options=EvalOptions(...)``).

    ``types``: memory types to select (with or instead of ``tasks``); ``rerank_top_k``: first-stage
    documents reranked per query; ``reranker_options``: the reranker spec's loader options;
    ``overwrite``: redo subsets already in ``output``; ``save_runs``: also write TREC run files (needs an
    output); ``scope``/``distractors``/``seed``: what each query is ranked among (``lmeb.engine.growth``);
    ``download``/``source``: fetch missing data (when no data root is given) from the official hub or
    mteb's copies; ``scale``: run the model on Ray workers.
    """

    types: tuple[str, ...] = ()
    rerank_top_k: int = 100
    reranker_options: Mapping[str, Any] = field(default_factory=dict)
    overwrite: bool = False
    save_runs: bool = False
    scope: str = POOL
    distractors: tuple[int, ...] = ()
    seed: int = DEFAULT_SEED
    download: bool = True
    source: str = "official"
    scale: Scale | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", tuple(self.types or ()))
        object.__setattr__(self, "distractors", tuple(self.distractors or ()))
        object.__setattr__(self, "reranker_options", dict(self.reranker_options or {}))
        _check_top_k(self.rerank_top_k)
        scopes_of(self.scope, self.distractors)
        if self.source not in SOURCES:
            raise LmebError(f"unknown data source {self.source!r} (choose from {', '.join(SOURCES)})")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise LmebError(f"seed must be a whole number, got {self.seed!r}")

    @property
    def scopes(self) -> list[str]:
        """The scopes this evaluation runs: one run (one results name) each."""
        return scopes_of(self.scope, self.distractors)


def _check_top_k(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LmebError("rerank_top_k must be at least 1")


@dataclass(frozen=True)
class RunOptions:
    """One run, checked once when built: the runner and the results store take it as it is."""

    data: Path  # the data root: resolved and checked here (lmeb.data.reader.data_root)
    output: Path | None = None  # None: the results stay in memory and nothing is written
    setting: str = "wo_inst"
    overwrite: bool = False
    save_runs: bool = False
    k_values: tuple[int, ...] = K_VALUES
    rerank_top_k: int = 100
    scope: str = POOL  # which documents each query is ranked among (lmeb.engine.growth): pool, corpus or xN
    seed: int = DEFAULT_SEED  # the distractor draw's seed (scope xN), recorded in provenance

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", data_root(self.data))
        if self.output is not None:
            object.__setattr__(self, "output", Path(self.output).expanduser())
        check_setting(self.setting)
        check_scope(self.scope)
        _check_top_k(self.rerank_top_k)
        ks = tuple(self.k_values)
        if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
            raise LmebError(f"k values must be whole numbers >= 1, got {list(ks)}")
        object.__setattr__(self, "k_values", ks)
        if self.save_runs and self.output is None:
            raise LmebError("save_runs writes TREC run files beside the results: give an output folder too")

