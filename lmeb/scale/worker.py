"""What runs inside one Ray actor: a replica of the model (and of the reranker), loaded once.

The class is plain Python (``lmeb.scale.pool`` wraps it with ``ray.remote``), so it imports without Ray
and its behaviour is the local model's: ``encode`` and ``score`` call the loaded adapter unchanged.
A model that fails to load does not kill the actor: ``info()`` reports the error, so the pool can say
it in one line instead of retrying a load that will fail again.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from lmeb.errors import LmebError
from lmeb.models.base import model_stats, stats_since


@dataclass(frozen=True)
class ModelSpec:
    """How to load a model the way ``lmeb run`` does: ``load_model(spec, **options)`` (role ``model``)
    or ``load_reranker(spec, **options)`` (role ``reranker``). Plain data, sent to every worker."""

    spec: str | None
    options: dict[str, Any] = field(default_factory=dict)
    role: str = "model"

    def load(self) -> Any:
        from lmeb.models.registry import load_model, load_reranker

        if self.role == "reranker":
            return load_reranker(self.spec, **self.options)  # type: ignore[arg-type]
        return load_model(self.spec, **self.options)


class ModelWorker:
    """One worker: ``model`` and/or ``reranker`` loaded once; ``threads`` caps torch's CPU threads."""

    def __init__(self, model: ModelSpec | None, reranker: ModelSpec | None, threads: int | None = None) -> None:
        self.error: str | None = None
        self.models: dict[str, Any] = {}
        try:
            if threads:
                import torch

                torch.set_num_threads(int(threads))
            for role, spec in (("model", model), ("reranker", reranker)):
                if spec is not None:
                    self.models[role] = spec.load()
        except Exception as exc:  # reported by info(): the pool turns it into one line
            self.error = str(exc) if isinstance(exc, LmebError) else f"{type(exc).__name__}: {exc}"

    def info(self) -> dict[str, Any]:
        """Where this worker runs and what it holds (name, similarity, config of each model)."""
        import ray

        from lmeb.models.base import model_type

        out: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname(), "error": self.error,
                               "node_id": ray.get_runtime_context().get_node_id()[:12],
                               "gpu_ids": [str(g) for g in ray.get_gpu_ids()]}
        for role, model in self.models.items():
            out[role] = {"name": getattr(model, "name", type(model).__name__),
                         "similarity": getattr(model, "similarity", None), "config": dict(model.config()),
                         "device": str(getattr(model, "device", "")) or None,
                         "uses_instructions": getattr(model, "uses_instructions", True),
                         "kind": model_type(model)}  # lmeb.models.base: the one protocol rule
        return out

    def _model(self, role: str) -> Any:
        if self.error is not None:
            raise LmebError(self.error)
        return self.models[role]

    def encode(self, texts: list[str], kind: str, instruction: str | None
               ) -> tuple[tuple[Any, dict[str, int]], float]:
        """The model's vectors for one shard plus the change of its counters (tokens, oom_backoffs), and the
        seconds it took."""
        from lmeb.embeddings.store import encode_texts

        model = self._model("model")
        start = time.perf_counter()
        before = model_stats(model)
        vectors = encode_texts(model, texts, kind, instruction)
        return (vectors, stats_since(model, before)), time.perf_counter() - start

    def score(self, role: str, pairs: list[tuple[str, str]], instruction: str | None
              ) -> tuple[tuple[Any, dict[str, int]], float]:
        """The reranker's scores for one shard of pairs plus the change of its counters, and the seconds."""
        import numpy as np

        model = self._model(role)
        start = time.perf_counter()
        before = model_stats(model)
        scores = np.asarray(model.score(pairs, instruction), dtype=np.float64).reshape(-1)
        return (scores, stats_since(model, before)), time.perf_counter() - start
