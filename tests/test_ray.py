"""Scale out on Ray (``lmeb.scale``) with real Ray clusters on this machine, MiniLM and a real subset.

Ray listens on 127.0.0.1 only here (``lmeb.scale.cluster.LOOPBACK_SWITCH``, set before ray is imported),
and every Ray process the tests start is gone when they end. Start-up is the main cost: one two-node
cluster serves the module, one worker pool serves most tests, shards are tiny so that a run has many of
them. Every test that starts Ray (the cluster or a pool) is marked slow: ``make test-fast`` keeps the ones
that need no Ray processes.
"""

from __future__ import annotations

import _thread
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from lmeb.cache import Cache
from lmeb.cli import main as cli_main
from lmeb.digest import DIGEST_SIZE
from lmeb.engine.options import EvalOptions, RunOptions, Scale
from lmeb.engine.runner import Runner
from lmeb.errors import LmebError
from lmeb.models.kalm import KalmReranker
from lmeb.models.registry import load_model
from lmeb.results.dataset_result import read_dataset_result
from lmeb.scale.cluster import LOOPBACK_SWITCH, WORKER_NICENESS
from lmeb.scale.pool import RayPool
from lmeb.scale.worker import ModelSpec
from lmeb.tasks.registry import get_task

os.environ.setdefault(LOOPBACK_SWITCH, "0")  # before ray is imported (by the ``ray`` fixture, or lmeb.scale)

pytestmark = pytest.mark.realdata
SUBSET = ("Gorilla", "gorilla_pytorch")  # 43 documents, 186 queries
QUIET = {"log_to_driver": False, "logging_level": logging.WARNING}  # the driver prints no worker logs
NICE = {"_system_config": {"worker_niceness": WORKER_NICENESS}}  # as lmeb's own local instance
OPTIONS = {"batch_size": 16, "max_length": 64}  # MiniLM truncated to 64 tokens: same model, 4x less work
SPAWNED: list[int] = []  # pids of Ray processes the tests saw; all must be gone at the end


def _gone(pids: list[int], within: float = 20.0) -> list[int]:
    """The pids still alive after waiting up to ``within`` seconds."""
    deadline = time.monotonic() + within
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        if alive:
            time.sleep(0.2)
    return alive


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) is gone too
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture(scope="module")
def ray() -> ModuleType:
    """ray, imported by the tests that start it: collection and the tests that start no Ray process skip it."""
    return pytest.importorskip("ray")


def _cpus_free(cpus: float, within: float = 30.0) -> bool:
    """Whether the cluster's ``cpus`` CPUs are all free again (killed actors release them a little later)."""
    import ray

    deadline = time.monotonic() + within
    while ray.available_resources().get("CPU") != cpus and time.monotonic() < deadline:
        time.sleep(0.2)
    return ray.available_resources().get("CPU") == cpus


def _run(model: object, data: Path, out: Path, cache: Path) -> Path:
    options = RunOptions(data=data, output=out)
    summary = Runner(model, options, "minilm", cache=Cache(cache)).run_dataset(get_task(SUBSET[0]), [SUBSET[1]])
    assert summary.path is not None
    return summary.path


def _assert_same_results(got: Path, expected: Path) -> None:
    a, b = read_dataset_result(got), read_dataset_result(expected)
    assert set(a.subsets) == set(b.subsets) == {SUBSET[1]}
    for name, sub in b.subsets.items():
        scores = a.subsets[name].scores
        assert set(scores) == set(sub.scores)
        bad = {m: (scores[m], v) for m, v in sub.scores.items() if abs(scores[m] - v) > 1e-6}
        assert not bad


def _cache_content(root: Path) -> dict[str, dict[bytes, np.ndarray]]:
    out: dict[str, dict[bytes, np.ndarray]] = {}
    for keys_path in sorted((root / "embeddings").glob("*/*.keys.npy")):
        keys = np.load(keys_path)
        vectors = np.load(keys_path.with_name(keys_path.name.replace(".keys.npy", ".npy")))
        assert keys.shape == (len(vectors), DIGEST_SIZE)
        rows = out.setdefault(keys_path.parent.name, {})
        for key, vector in zip(keys, vectors, strict=True):
            assert key.tobytes() not in rows  # nothing written twice
            rows[key.tobytes()] = vector
    return out


def _assert_same_cache(got: Path, expected: Path) -> None:
    a, b = _cache_content(got), _cache_content(expected)
    assert set(a) == set(b) and b  # same namespaces: the pool's config() is the model's own
    for namespace, rows in b.items():
        assert set(a[namespace]) == set(rows)
        diff = max(float(np.abs(a[namespace][k] - v).max()) for k, v in rows.items())
        assert diff <= 1e-6


def _when(condition: Callable[[], bool], action: Callable[[], None], timeout: float = 300.0) -> threading.Thread:
    """Run ``action`` in a thread as soon as ``condition()`` holds (polled every 5 ms)."""
    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                action()
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def reference(minilm_path: Path, real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The single-process run: (results file, embedding cache)."""
    tmp = tmp_path_factory.mktemp("single")
    path = _run(load_model(str(minilm_path), **OPTIONS), real_data, tmp / "out", tmp / "cache")
    return path, tmp / "cache"


@pytest.fixture(scope="module")
def ray_cluster(ray: ModuleType) -> Iterator[None]:
    """One Ray cluster for the module: a head and a second node on loopback, 1 CPU each (2 CPUs in all), started
    once (each start costs seconds of Ray's own processes); every process it started is gone when it ends."""
    from ray.cluster_utils import Cluster

    assert not ray.is_initialized()
    for attempt in range(3):  # Ray waits a fixed 30 s for a raylet: a busy shared machine can miss that
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, **NICE})
        try:
            cluster.add_node(num_cpus=1)
            ray.init(address=cluster.address, **QUIET)
            cluster.wait_for_nodes()
            break
        except Exception:
            ray.shutdown()
            cluster.shutdown()
            if attempt == 2:
                raise
    SPAWNED.extend(p.process.pid for node in cluster.list_all_nodes() for procs in node.all_processes.values()
                   for p in procs if p.process is not None)
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    try:
        yield
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert not _gone(SPAWNED)


@pytest.mark.slow
def test_two_node_cluster_gives_the_single_process_numbers(ray_cluster: None, reference: tuple[Path, Path],
                                                           minilm_path: Path, real_data: Path, tmp_path: Path) -> None:
    """Runs first, on the module's cluster: one worker on each of its two nodes."""
    with RayPool(ModelSpec(str(minilm_path), OPTIONS), workers=2, cpus_per_worker=1, shard_size=16) as pool:
        SPAWNED.extend(pool.pids())
        path = _run(pool.model, real_data, tmp_path / "out", tmp_path / "cache")
        cluster_info = pool.provenance()
    _assert_same_results(path, reference[0])
    _assert_same_cache(tmp_path / "cache", reference[1])
    assert len(cluster_info["nodes"]) == 2
    assert {n["address"] for n in cluster_info["nodes"]} == {"127.0.0.1"}
    assert len({w["node_id"] for w in cluster_info["per_worker"]}) == 2  # one worker per node
    assert all(w["shards"] > 0 for w in cluster_info["per_worker"])
    assert _cpus_free(2)  # the pool's workers are gone


@pytest.fixture(scope="module")
def tiny_kalm(shared_dir: Path) -> Path:
    path = shared_dir / "kalm_tiny" / "tiny_model"
    if not (path / "model.safetensors").is_file():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(scope="module")
def pool(ray_cluster: None, minilm_path: Path, tiny_kalm: Path) -> Iterator[RayPool]:
    """Two workers (1 CPU each), each with MiniLM and the tiny KaLM reranker; tiny shards."""
    with RayPool(ModelSpec(str(minilm_path), OPTIONS),
                 ModelSpec(f"kalm:{tiny_kalm}", {"device": "cpu"}, "reranker"),
                 workers=2, cpus_per_worker=1, shard_size=16, shard_pairs=5) as p:
        SPAWNED.extend(p.pids())
        yield p


@pytest.mark.slow
def test_cli_run_with_ray_equals_single_process(ray_cluster: None, reference: tuple[Path, Path], minilm_path: Path,
                                                real_data: Path, tmp_path: Path) -> None:
    rc = cli_main(["run", "--model", str(minilm_path), "--name", "minilm", "--tasks", "/".join(SUBSET),
                   "--data", str(real_data), "--output", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
                   "--batch-size", "16", "--max-length", "64", "--no-progress",
                   "--ray", "--workers", "2", "--cpus-per-worker", "1"])
    assert rc == 0
    path = tmp_path / "out" / "minilm" / "wo_inst" / f"{SUBSET[0]}.json"
    _assert_same_results(path, reference[0])
    _assert_same_cache(tmp_path / "cache", reference[1])
    cluster = read_dataset_result(path).provenance["cluster"]
    assert cluster["engine"] == "ray" and cluster["workers"] == 2 and cluster["devices"] == ["cpu"]
    assert sum(w["items"] for w in cluster["per_worker"]) == 43 + 186
    assert _cpus_free(2)  # the run's workers are gone


def test_cli_worker_flags_need_ray(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["run", "--model", "bm25", "--tasks", "LoCoMo", "--workers", "2"]) == 2
    assert "go with --ray" in capsys.readouterr().err


@pytest.mark.slow
def test_pool_encoder_keeps_the_callers_order(pool: RayPool) -> None:
    """Texts are sent length-ordered; rows come back in the caller's order (the equality of whole runs
    with the single-process run is checked by the CLI, two-node and fault tests)."""
    before = pool.model.stats["shards"]
    texts = [f"text {i} " + "word " * (i % 13) for i in range(40)][::-1]
    got = pool.model.encode(texts, "document")
    assert pool.model.stats["shards"] - before == 5  # 40 texts, at least MIN_SHARD=8 per shard
    assert pool.model.stats["tokens"] > 40  # the encoder's own counters come back from the workers
    np.testing.assert_allclose(got, np.concatenate([pool.model.encode(texts[i:i + 8], "document")
                                                    for i in range(0, 40, 8)]), atol=1e-6)
    assert pool.model.encode_chunk == 2 * 16 * 8  # what the embedding store hands it per call


@pytest.mark.slow
def test_reranker_pairs_partitioned_by_passage(pool: RayPool, tiny_kalm: Path) -> None:
    queries = [f"question number {i} about the weather" for i in range(5)]
    docs = [f"document {j}: " + "sun and rain " * (j + 1) for j in range(6)]
    pairs = [(q, d) for q in queries for d in docs]  # every passage shared by 5 queries
    local = KalmReranker(tiny_kalm, device="cpu")
    before = dict(pool.reranker.stats)
    got = pool.reranker.score(pairs, "find the weather")
    np.testing.assert_allclose(got, local.score(pairs, "find the weather"), atol=1e-5, rtol=0)
    stats = {k: v - before.get(k, 0) for k, v in pool.reranker.stats.items()}
    assert stats["pairs"] == 30 and stats["encoded"] == 6  # each passage's states computed once, on one worker
    assert stats["shards"] == 6  # shard_pairs=5: one passage (its 5 pairs) per shard
    assert pool.reranker.config() == local.config()


@pytest.mark.slow
def test_worker_killed_mid_shard_is_retried_with_identical_numbers(pool: RayPool, reference: tuple[Path, Path],
                                                                   real_data: Path, tmp_path: Path) -> None:
    victim = pool.pids()[0]
    counts = pool.workers.counts  # type: ignore[union-attr]
    start = counts["shards"]
    killer = _when(lambda: counts["shards"] > start, lambda: os.kill(victim, signal.SIGKILL))
    before = dict(pool.model.stats)
    path = _run(pool.model, real_data, tmp_path / "out", tmp_path / "cache")
    killer.join(timeout=5)
    stats = {k: v - before.get(k, 0) for k, v in pool.model.stats.items()}
    assert stats["retries"] >= 1 and stats["workers_replaced"] == 1
    _assert_same_results(path, reference[0])
    _assert_same_cache(tmp_path / "cache", reference[1])  # nothing lost, nothing twice
    assert not _gone([victim], within=5)
    pids = pool.pids()
    assert victim not in pids
    SPAWNED.extend(pids)
    assert pool.provenance()["workers_replaced"] >= 1


@pytest.mark.slow
def test_retry_bound_ends_with_one_line_error(pool: RayPool, real_data: Path) -> None:
    workers = pool.workers
    assert workers is not None
    victim = pool.pids()[1]
    start = workers.counts["shards"]
    workers.max_retries = 0
    try:
        killer = _when(lambda: workers.counts["shards"] > start, lambda: os.kill(victim, signal.SIGKILL))
        texts = [f"text {i} " + "word " * (i % 50) for i in range(400)]
        with pytest.raises(LmebError, match=r"failed 1 time\(s\): its Ray worker died") as err:
            pool.model.encode(texts, "document")
        killer.join(timeout=5)
        assert "\n" not in str(err.value)
    finally:
        workers.max_retries = pool.max_retries
    SPAWNED.extend(pool.pids())


@pytest.mark.slow
def test_worker_that_cannot_load_the_model_is_one_line_error(ray_cluster: None) -> None:
    with pytest.raises(LmebError, match="a Ray worker could not load the model") as err:
        RayPool(ModelSpec(None), workers=1, cpus_per_worker=0)  # fails before importing torch: cheap
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_more_workers_than_the_cluster_holds_is_an_error(ray_cluster: None, minilm_path: Path) -> None:
    with pytest.raises(LmebError, match="the Ray cluster has 2 CPUs"):
        RayPool(ModelSpec(str(minilm_path)), workers=3, cpus_per_worker=1)


def test_evaluate_with_ray_takes_spec_strings(real_data: Path) -> None:
    from lmeb import evaluate

    with pytest.raises(LmebError, match="a Scale takes model specs"):
        evaluate(lambda texts: np.zeros((len(texts), 2)), tasks="/".join(SUBSET), data=real_data,
                 options=EvalOptions(scale=Scale()))


def test_bm25_stays_on_the_driver() -> None:
    pool = RayPool(ModelSpec("bm25"))
    assert pool.workers is None and pool.connection is None and hasattr(pool.model, "search")
    assert pool.provenance()["workers"] == 0


@pytest.mark.slow
def test_ctrl_c_cancels_the_call_and_shutdown_ends_the_workers(pool: RayPool) -> None:
    """Last: it shuts the module's pool down."""
    workers = pool.workers
    assert workers is not None
    pids = pool.pids()
    start = workers.counts["shards"]
    in_call = threading.Event()
    fired: list[int] = []  # shards done when Ctrl-C was pressed (the failure message says whether it was)

    def ctrl_c() -> None:
        fired.append(workers.counts["shards"] - start)
        _thread.interrupt_main()

    interrupter = _when(lambda: in_call.is_set() and workers.counts["shards"] > start, ctrl_c)
    texts = [f"text {i} " + "word " * (i % 50) for i in range(2000)]
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as in a terminal
    try:
        in_call.set()
        pool.model.encode(texts, "document")
    except KeyboardInterrupt:
        pass
    else:
        pytest.fail(f"the call ended without KeyboardInterrupt: Ctrl-C pressed after {fired} shard(s), "
                    f"{workers.counts['shards'] - start} of {-(-2000 // 16)} done")
    finally:
        signal.signal(signal.SIGINT, previous)
    in_call.clear()
    interrupter.join(timeout=5)
    assert workers.counts["shards"] - start < 2000 // 16  # it stopped early
    pool.shutdown()
    assert not _gone(pids)
    assert _cpus_free(2)
