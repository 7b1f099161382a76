"""A pool of Ray workers, each holding one replica of the model (and reranker), behind lmeb's protocols.

``RayPool(ModelSpec(...))`` starts the workers (each loads the model once, from the same spec and
options, on its own GPU when ``gpus_per_worker`` > 0) and offers:

* ``pool.model``: for an encoder, a ``RayEncoder`` (lmeb's ``Encoder`` protocol: ``encode``, ``config``,
  ``name``, ``similarity``). ``config()`` is the wrapped model's own, so the embedding cache and the
  results' run key are exactly those of a single-process run; ``EmbeddingStore`` does the cache lookup
  and hands the pool what is left, in calls of ``encode_chunk`` texts. Each call's texts are ordered
  by length, cut into shards and spread over the workers; the vectors come back in the caller's order.
  For a reranker used as the model, a ``RayReranker``; BM25 stays on the driver (it is cheap).
* ``pool.reranker``: a ``RayReranker`` (``score``, ``config``, ``name``). Pairs are partitioned by
  passage, so each unique passage's encoder states (KaLM) are computed once, on one worker; a passage
  has a home worker (hash of its text) that keeps it across calls while it is free.

Search, metrics and results stay on the driver. ``provenance()`` describes the cluster (nodes,
workers, devices) and each worker's throughput; ``stats`` holds integer counters (shards, retries,
workers replaced, and the reranker's own counters summed over workers). Use it as a context manager
(or call ``shutdown()``): Ctrl-C inside a call cancels the shards in flight and the exit kills the
workers (and the local Ray instance, when the pool started one).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from lmeb.digest import text_digest
from lmeb.errors import LmebError
from lmeb.scale.cluster import Connection, connect, describe, import_ray, size_pool
from lmeb.scale.dispatch import Shard, WorkerSet
from lmeb.scale.worker import ModelSpec, ModelWorker

SHARD_TEXTS = 256  # texts per encoding shard at most (a multiple of the usual batch sizes)
SHARD_PAIRS = 4096  # (query, passage) pairs per reranking shard at most
MIN_SHARD = 8  # a call is cut into at least ~4 shards per worker, but none smaller than this
CALL_SHARDS = 8  # encode_chunk = workers x SHARD_TEXTS x CALL_SHARDS texts per call from the store


def is_bm25(spec: ModelSpec | None) -> bool:
    from lmeb.models.registry import is_bm25_spec

    return (spec is not None and spec.role == "model" and spec.options.get("preset") is None
            and is_bm25_spec(spec.spec or ""))


class RayPool:
    """Ray workers for ``model`` and/or ``reranker`` (see the module docstring)."""

    def __init__(self, model: ModelSpec | None, reranker: ModelSpec | None = None, *, address: str | None = "auto",
                 workers: int | None = None, gpus_per_worker: float | None = None,
                 cpus_per_worker: float | None = None, shard_size: int = SHARD_TEXTS,
                 shard_pairs: int = SHARD_PAIRS, max_retries: int = 3, num_cpus: int | None = None,
                 timeout: float | None = None) -> None:
        if model is None and reranker is None:
            raise LmebError("RayPool needs a model or a reranker")
        if shard_size < 1 or shard_pairs < 1 or max_retries < 0:
            raise LmebError("shard sizes must be at least 1 and max_retries at least 0")
        self.shard_size, self.shard_pairs, self.max_retries = int(shard_size), int(shard_pairs), int(max_retries)
        local = model if is_bm25(model) else None
        remote_model = None if local is not None else model
        self.model: Any = local.load() if local is not None else None
        self.reranker: Any = None
        self.workers: WorkerSet | None = None
        self.connection: Connection | None = None
        self._cluster: dict[str, Any] = {}
        if remote_model is None and reranker is None:
            return  # BM25 alone: nothing to scale out
        self.connection = connect(address, num_cpus, timeout)
        try:
            self.sizing = size_pool(workers, gpus_per_worker, cpus_per_worker)
            ray = import_ray()
            actor = ray.remote(ModelWorker).options(num_cpus=self.sizing.cpus_per_worker,
                                                    num_gpus=self.sizing.gpus_per_worker,
                                                    max_restarts=0, max_task_retries=0)
            threads = int(self.sizing.cpus_per_worker) if self.sizing.gpus_per_worker == 0 else None
            self.workers = WorkerSet(lambda: actor.remote(remote_model, reranker, threads), self.sizing.workers,
                                     max_retries=self.max_retries)
            infos = self.workers.start()
            for role in ("model", "reranker"):
                configs = [info[role]["config"] for info in infos if role in info]
                if any(c != configs[0] for c in configs):
                    raise LmebError(f"the Ray workers loaded different {role}s (different config); is the model "
                                    "path the same files on every node?")
            self._cluster = describe()
            if remote_model is not None:
                info = infos[0]["model"]
                self.model = RayEncoder(self, info) if info["kind"] == "encoder" else RayReranker(self, "model", info)
            if reranker is not None:
                self.reranker = RayReranker(self, "reranker", infos[0]["reranker"])
        except BaseException:
            self.shutdown()
            raise

    # ------------------------------------------------------------------------------------ lifecycle
    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Kill the workers and close the Ray session if this pool started it (idempotent)."""
        if self.workers is not None:
            self.workers.shutdown()
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    @property
    def size(self) -> int:
        return len(self.workers) if self.workers is not None else 0

    def pids(self) -> list[int]:
        """Process ids of the current workers (tests kill one to inject a fault)."""
        if self.workers is None:
            return []
        self.workers.refresh_info(timeout=0.0)
        return self.workers.pids()

    def shard_len(self, n: int, most: int) -> int:
        """Items per shard for a call of ``n`` items: at most ``most``, about 4 shards per worker if fewer."""
        return max(1, min(most, max(MIN_SHARD, math.ceil(n / (4 * max(1, self.size))))))

    # ----------------------------------------------------------------------------------- provenance
    def provenance(self) -> dict[str, Any]:
        """The cluster (Ray version, nodes, workers, devices) and each worker slot's throughput."""
        if self.workers is None:
            return {"engine": "ray", "workers": 0, "note": "BM25 runs on the driver"}
        self.workers.refresh_info(timeout=0.0)
        per_worker, devices = [], set()
        for i, slot in enumerate(self.workers.slots):
            roles = {r: slot.info[r].get("device") for r in ("model", "reranker") if r in slot.info}
            devices.update(d for d in roles.values() if d)
            per_worker.append({"worker": i, "host": slot.info.get("host"), "node_id": slot.info.get("node_id"),
                               "gpu_ids": slot.info.get("gpu_ids"), "devices": roles, "shards": slot.shards,
                               "items": slot.items, "busy_seconds": round(slot.seconds, 3),
                               "items_per_second": round(slot.items / slot.seconds, 2) if slot.seconds else None,
                               "replaced": slot.replaced})
        counts = self.workers.counts
        return {"engine": "ray", "address": self.connection.address if self.connection else None,
                **self._cluster, "workers": self.size, "cpus_per_worker": self.sizing.cpus_per_worker,
                "gpus_per_worker": self.sizing.gpus_per_worker, "devices": sorted(devices),
                "shard_size": self.shard_size, "shard_pairs": self.shard_pairs, "max_retries": self.max_retries,
                "shards": counts["shards"], "retries": counts["retries"],
                "workers_replaced": counts["workers_replaced"], "per_worker": per_worker}

    def run(self, method: str, shards: list[Shard], counts: Counter[str]) -> list[Any]:
        """``WorkerSet.run`` of a worker method that returns (value, its model's counter changes): the values
        in shard order; ``counts`` gets the shard/retry/replacement counts and the model's counters, summed."""
        if self.workers is None:
            raise LmebError("the Ray pool has no workers")
        before = Counter(self.workers.counts)
        results = self.workers.run(method, shards)
        counts.update(Counter(self.workers.counts) - before)
        for _, delta in results:
            counts.update(delta)  # the model's own counters (tokens, oom_backoffs), summed over workers
        return [value for value, _ in results]


class _Remote:
    """What both facades share: the wrapped model's identity (from a worker) and the pool's counters."""

    def __init__(self, pool: RayPool, info: dict[str, Any]) -> None:
        self.pool = pool
        self.name: str = info["name"]
        self.uses_instructions: bool = info.get("uses_instructions", True)
        self._config = dict(info["config"])
        self._counts: Counter[str] = Counter()

    @property
    def stats(self) -> dict[str, int]:
        """Shards, retries and workers replaced (the model adds its own counters, summed over workers)."""
        return {"shards": 0, "retries": 0, "workers_replaced": 0, **self._counts}

    def config(self) -> dict[str, Any]:
        """The wrapped model's own config: it keys the embedding cache and the results' run key."""
        return dict(self._config)

    def provenance(self) -> dict[str, Any]:
        return self.pool.provenance()


class RayEncoder(_Remote):
    """lmeb's ``Encoder`` protocol over a ``RayPool``: the wrapped model's name, similarity and config."""

    def __init__(self, pool: RayPool, info: dict[str, Any]) -> None:
        super().__init__(pool, info)
        self.similarity = info["similarity"]
        self.dim: int | None = None

    @property
    def encode_chunk(self) -> int:
        """Texts per call from the embedding store (and its disk-flush size): several shards per worker."""
        return self.pool.size * self.pool.shard_size * CALL_SHARDS

    def encode(self, texts: list[str], kind: str = "query", instruction: str | None = None) -> np.ndarray:
        """float32 ``(len(texts), dim)``: length-ordered shards encoded on the workers, rows in input order."""
        if not texts:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        order = np.argsort(np.fromiter((-len(t) for t in texts), dtype=np.int64, count=len(texts)), kind="stable")
        size = self.pool.shard_len(len(texts), self.pool.shard_size)
        shards = []
        for i, start in enumerate(range(0, len(texts), size)):
            chunk = [texts[j] for j in order[start:start + size].tolist()]
            shards.append(Shard(i, (chunk, kind, instruction), len(chunk)))
        parts = self.pool.run("encode", shards, self._counts)
        vectors = np.concatenate(parts) if len(parts) > 1 else parts[0]
        out = np.empty_like(vectors)
        out[order] = vectors
        self.dim = out.shape[1]
        return out


def home_worker(passage: str, workers: int) -> int:
    """The worker that keeps ``passage``'s states (stable across calls and runs)."""
    return int.from_bytes(text_digest(passage)[:8], "little") % max(1, workers)


class RayReranker(_Remote):
    """lmeb's ``Reranker`` protocol over a ``RayPool``; pairs are partitioned by passage."""

    def __init__(self, pool: RayPool, role: str, info: dict[str, Any]) -> None:
        super().__init__(pool, info)
        self.role = role

    def score(self, pairs: list[tuple[str, str]], instruction: str | None = None) -> np.ndarray:
        """float64 ``(len(pairs),)``: every pair of one passage is scored on the same worker."""
        if not pairs:
            return np.zeros(0, dtype=np.float64)
        by_passage: dict[str, list[int]] = {}
        for i, (_, passage) in enumerate(pairs):
            by_passage.setdefault(passage, []).append(i)
        size = self.pool.shard_len(len(pairs), self.pool.shard_pairs)
        buckets: list[list[list[int]]] = [[] for _ in range(self.pool.size)]
        for passage, rows in by_passage.items():
            buckets[home_worker(passage, self.pool.size)].append(rows)
        cuts: list[tuple[list[int], int]] = []  # (pair rows, home): whole passages of one home per shard
        for home, groups in enumerate(buckets):
            current: list[int] = []
            for rows in groups:
                current.extend(rows)
                if len(current) >= size:
                    cuts.append((current, home))
                    current = []
            if current:
                cuts.append((current, home))
        shards = [Shard(i, (self.role, [pairs[r] for r in rows], instruction), len(rows), home)
                  for i, (rows, home) in enumerate(cuts)]
        out = np.empty(len(pairs), dtype=np.float64)
        for (rows, _), scores in zip(cuts, self.pool.run("score", shards, self._counts), strict=True):
            out[rows] = scores
        return out
