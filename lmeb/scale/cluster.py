"""Joining or starting a Ray cluster, sizing the worker pool, and describing the cluster for provenance.

``connect("auto")`` joins the cluster named by ``RAY_ADDRESS`` or starts a local one; ``connect(ADDRESS)``
joins that cluster (``HOST:PORT`` of a ``ray start --head`` node, or ``ray://HOST:10001``). A local
instance lmeb starts itself listens on 127.0.0.1 only (Ray otherwise binds its ports to every interface)
and is shut down again by ``Connection.close``; a cluster that was already running is only left.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from dataclasses import dataclass
from typing import Any

from lmeb.errors import LmebError

# Ray resolves "this node's address" to the machine's outward address unless it believes it runs on a
# laptop (macOS/Windows), where it uses loopback; this switch (read when ray is imported) gives that.
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
# Ray starts workers at niceness 15 (so that they never slow the driver); lmeb's workers ARE the run, so a
# local instance gives them the driver's priority (on a shared machine they would crawl otherwise).
WORKER_NICENESS = 0
RAY_TIMEOUT = 30.0  # seconds to wait for a cluster address to answer ($LMEB_RAY_TIMEOUT)


@dataclass(frozen=True)
class Sizing:
    """How many workers, and what each one reserves."""

    workers: int
    cpus_per_worker: float
    gpus_per_worker: float


@dataclass
class Connection:
    """A Ray session lmeb uses; ``close()`` shuts down only an instance lmeb started."""

    address: str  # "local" for an instance started here
    started_here: bool

    def close(self) -> None:
        import ray

        if self.started_here and ray.is_initialized():
            ray.shutdown()


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    if "ray" not in sys.modules:
        os.environ.setdefault(LOOPBACK_SWITCH, "0")  # a local instance binds to 127.0.0.1 (see above)
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is in the test lock
        raise LmebError("--ray needs Ray: pip install 'lmeb[ray]' (or pip install ray)") from exc
    return ray


def probe(target: str, timeout: float | None = None) -> None:
    """One line within ``timeout`` seconds (``$LMEB_RAY_TIMEOUT``, default 30) when nothing answers at a
    ``HOST:PORT`` / ``ray://HOST:PORT`` address: ``ray.init`` itself retries for minutes with warnings."""
    host, sep, port = target.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    if timeout is None:
        try:
            timeout = float(os.environ.get("LMEB_RAY_TIMEOUT", RAY_TIMEOUT))
        except ValueError:
            value = os.environ["LMEB_RAY_TIMEOUT"]
            raise LmebError(f"LMEB_RAY_TIMEOUT must be a number of seconds, not {value!r}") from None
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise LmebError(f"could not reach the Ray cluster at {target} within {timeout:g}s ({why}); is it running? "
                        "(LMEB_RAY_TIMEOUT sets the wait)") from None


def connect(address: str | None = "auto", num_cpus: int | None = None, timeout: float | None = None) -> Connection:
    """Use the Ray session already open in this process, join ``address``, or start a local instance.

    ``auto``/None: ``$RAY_ADDRESS`` if set, else a new local instance (``num_cpus`` caps its CPUs).
    ``timeout``: seconds an address may stay silent (``probe``; default ``$LMEB_RAY_TIMEOUT`` or 30).
    """
    target = os.environ.get("RAY_ADDRESS") if address in (None, "", "auto") else address
    # a session can be open only where Ray was imported: an address nobody answers fails before the import
    ray = sys.modules.get("ray")
    if target and not (ray and ray.is_initialized()):
        probe(target, timeout)
    ray = import_ray()
    if ray.is_initialized():
        return Connection(address="existing", started_here=False)
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if target:
            ray.init(address=target, **quiet)
            return Connection(address=target, started_here=False)
        ray.init(address="local", num_cpus=num_cpus, _system_config={"worker_niceness": WORKER_NICENESS}, **quiet)
    except Exception as exc:  # ray.init raises plain Exceptions too (e.g. a raylet that did not start in 30 s)
        where = f"the Ray cluster at {target}" if target else "a local Ray instance"
        raise LmebError(f"could not reach {where}: {str(exc).splitlines()[0] if str(exc) else exc}") from exc
    return Connection(address="local", started_here=True)


def size_pool(workers: int | None = None, gpus_per_worker: float | None = None,
              cpus_per_worker: float | None = None) -> Sizing:
    """Default: one worker per GPU (per ``gpus_per_worker`` GPUs), else one per 2 CPU cores; checked
    against the cluster's resources so no worker waits forever for a slot that does not exist."""
    import ray

    total = ray.cluster_resources()
    cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
    if workers is not None and workers < 1:
        raise LmebError("--workers must be at least 1")
    if gpus_per_worker is not None and gpus_per_worker < 0:
        raise LmebError("--gpus-per-worker must not be negative")
    if gpus_per_worker is None:
        gpus_per_worker = 1.0 if gpus >= 1 else 0.0
    if workers is None:
        workers = int(gpus // gpus_per_worker) if gpus_per_worker > 0 else max(1, int(cpus // 2))
        workers = max(1, workers)
    if cpus_per_worker is None:
        cpus_per_worker = 1.0 if gpus_per_worker > 0 else max(1.0, float(int(cpus // workers)))
    need_cpus, need_gpus = workers * cpus_per_worker, workers * gpus_per_worker
    if need_cpus > cpus or need_gpus > gpus:
        raise LmebError(f"{workers} worker(s) x ({cpus_per_worker:g} CPU, {gpus_per_worker:g} GPU) need "
                        f"{need_cpus:g} CPUs and {need_gpus:g} GPUs; the Ray cluster has {cpus:g} CPUs and "
                        f"{gpus:g} GPUs (lower --workers or --gpus-per-worker)")
    return Sizing(workers, float(cpus_per_worker), float(gpus_per_worker))


def describe() -> dict[str, Any]:
    """The cluster's live nodes (address, CPUs, GPUs, GPU model where Ray names it)."""
    import ray

    nodes = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        res = node.get("Resources", {})
        gpu_types = sorted(k.removeprefix("accelerator_type:") for k in res if k.startswith("accelerator_type:"))
        nodes.append({"node_id": str(node.get("NodeID", ""))[:12], "address": node.get("NodeManagerAddress"),
                      "cpus": res.get("CPU", 0),
                      "gpus": res.get("GPU", 0), "accelerators": gpu_types or None})
    nodes.sort(key=lambda n: (str(n["address"]), n["node_id"]))
    return {"ray_version": ray.__version__, "nodes": nodes}
