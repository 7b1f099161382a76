"""A fixed set of Ray actors and a fault-tolerant loop that runs shards of work on them.

Each worker slot holds one actor with up to ``depth`` shards queued (so the next shard's inputs travel
while the current one computes). A shard whose actor dies (killed, out of memory, node lost) goes back
to the front of the queue and runs on another actor; the dead actor is replaced by a fresh one (which
loads the model again) in the same slot. A shard that has failed ``max_retries + 1`` times ends the run
with a one-line error. Results are stored by shard index only when a shard succeeds, so nothing is
lost and nothing is counted twice. An error raised by the model itself (bad input, non-finite output)
is not retried: it would fail again. On any exception, Ctrl-C included, the shards in flight are
cancelled before it propagates.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lmeb.errors import LmebError


@dataclass
class Shard:
    """One unit of work: ``method(*args)`` on some worker; ``size`` items (texts, pairs) for throughput;
    ``home`` is the slot that should run it when free (a passage's states are cached there)."""

    index: int
    args: tuple[Any, ...]
    size: int
    home: int | None = None


@dataclass
class SlotStats:
    """What one worker slot did (all actors that held it): shards and items done, busy seconds."""

    shards: int = 0
    items: int = 0
    seconds: float = 0.0
    replaced: int = 0
    info: dict[str, Any] = field(default_factory=dict)


def _lost_errors() -> tuple[type[BaseException], ...]:
    from ray import exceptions as rex

    return (rex.RayActorError, rex.WorkerCrashedError, rex.OutOfMemoryError, rex.NodeDiedError,
            rex.ObjectLostError, rex.LocalRayletDiedError)


class WorkerSet:
    """``count`` actors made by ``factory()`` (each loads its models once), run shards over them."""

    def __init__(self, factory: Callable[[], Any], count: int, max_retries: int = 3, depth: int = 2,
                 start_timeout: float = 1800.0) -> None:
        self.factory = factory
        self.max_retries = int(max_retries)
        self.depth = max(1, int(depth))
        self.start_timeout = start_timeout
        self.handles: list[Any] = [factory() for _ in range(count)]
        self.slots = [SlotStats() for _ in range(count)]
        self.counts: Counter[str] = Counter()  # shards, retries, workers_replaced
        self._info_refs: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.handles)

    def start(self) -> list[dict[str, Any]]:
        """Wait until every worker has loaded its models; a load error or a timeout is one line."""
        import ray

        refs = [h.info.remote() for h in self.handles]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=self.start_timeout)
        if len(ready) < len(refs):
            raise LmebError(f"only {len(ready)} of {len(refs)} Ray workers started within {self.start_timeout:g}s "
                            "(is the cluster short of the CPUs/GPUs asked for?)")
        infos = ray.get(refs)
        for slot, info in zip(self.slots, infos, strict=True):
            if info.get("error"):
                raise LmebError(f"a Ray worker could not load the model: {info['error']}")
            slot.info = info
        return infos

    def pids(self) -> list[int]:
        """The process id of each slot's current actor (as last reported)."""
        return [int(s.info.get("pid", -1)) for s in self.slots]

    def shutdown(self) -> None:
        """Kill every actor (idempotent)."""
        import ray

        for handle in self.handles:
            with contextlib.suppress(Exception):  # already dead, or Ray already shut down
                ray.kill(handle, no_restart=True)
        self.handles = []

    # -------------------------------------------------------------------------------------- running
    def run(self, method: str, shards: list[Shard]) -> list[Any]:
        """Each shard's result, in shard order; worker ``method`` returns ``(result, seconds)``."""
        import ray

        if not self.handles:
            raise LmebError("the Ray worker pool is shut down")
        lost = _lost_errors()
        results: list[Any] = [None] * len(shards)
        pending = list(shards)
        inflight: dict[Any, tuple[Shard, int, Any]] = {}  # ref -> (shard, slot, actor handle)
        load = [0] * len(self.handles)
        attempts: Counter[int] = Counter()
        try:
            while pending or inflight:
                self._fill(method, pending, inflight, load)
                ready, _ = ray.wait(list(inflight), num_returns=1)
                ref = ready[0]
                shard, slot, handle = inflight.pop(ref)
                load[slot] -= 1
                try:
                    value, seconds = ray.get(ref)
                except lost as exc:
                    attempts[shard.index] += 1
                    self._replace(slot, handle)
                    if attempts[shard.index] > self.max_retries:
                        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                        raise LmebError(f"shard {shard.index + 1} of {len(shards)} failed {attempts[shard.index]} "
                                        f"time(s): its Ray worker died ({reason[:200]})") from None
                    self.counts["retries"] += 1
                    pending.insert(0, shard)
                    continue
                except ray.exceptions.RayTaskError as exc:
                    raise _model_error(exc) from None
                results[shard.index] = value
                stats = self.slots[slot]
                stats.shards += 1
                stats.items += shard.size
                stats.seconds += float(seconds)
                self.counts["shards"] += 1
        except BaseException:
            for ref in inflight:
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
            raise
        return results

    def _fill(self, method: str, pending: list[Shard], inflight: dict, load: list[int]) -> None:
        """Give every slot with room its own shards first (``home``), then any pending shard."""
        for slot, handle in enumerate(self.handles):
            while load[slot] < self.depth and pending:
                pick = next((i for i, s in enumerate(pending) if s.home == slot), None)
                if pick is None:
                    pick = next((i for i, s in enumerate(pending) if s.home is None or s.home >= len(self.handles)),
                                None)
                if pick is None and load[slot] == 0:  # idle: take another slot's shard rather than wait
                    pick = 0
                if pick is None:
                    break
                shard = pending.pop(pick)
                inflight[getattr(handle, method).remote(*shard.args)] = (shard, slot, handle)
                load[slot] += 1

    def _replace(self, slot: int, dead: Any) -> None:
        """A fresh actor in ``slot`` unless that was already done for this death."""
        import ray

        if self.handles[slot] is not dead:
            return
        with contextlib.suppress(Exception):
            ray.kill(dead, no_restart=True)
        self.handles[slot] = self.factory()
        self.slots[slot].replaced += 1
        self.counts["workers_replaced"] += 1
        ref = self.handles[slot].info.remote()
        self._info_refs[slot] = ref

    def refresh_info(self, timeout: float = 0.0) -> None:
        """Pick up the info of replacement actors that have started (their pid, node, device)."""
        import ray

        for slot, ref in list(self._info_refs.items()):
            ready, _ = ray.wait([ref], timeout=timeout)
            if ready:
                with contextlib.suppress(Exception):
                    self.slots[slot].info = ray.get(ref)
                del self._info_refs[slot]


def _model_error(exc: Any) -> LmebError:
    """A one-line error for an exception the model raised inside a worker."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, LmebError):
        return LmebError(str(cause))
    if cause is not None:
        return LmebError(f"a Ray worker failed: {type(cause).__name__}: {str(cause).strip().splitlines()[0][:300]}")
    return LmebError(f"a Ray worker failed: {str(exc).strip().splitlines()[-1][:300]}")
