"""Paired comparison: the sign-flip test by hand and against scipy, bootstrap CIs against scipy, the pooling
rule (subsets weigh equally), alignment by query id, determinism, and the CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from lmeb.cli import main as cli
from lmeb.compare.paired import compare
from lmeb.compare.resampling import bootstrap_means, percentile_ci, sign_flip_test
from lmeb.errors import LmebError
from lmeb.results.collection import load_results


def test_sign_flip_by_hand() -> None:
    d = [0.1, 0.2, -0.05, 0.3]
    # T = mean = 0.1375; of the 16 flips only (+,+,+,+) = 0.65, (+,+,-,+) = 0.55 and their negatives reach
    # |sum| >= 0.55, so p = 4/16.
    assert sign_flip_test(d) == pytest.approx(0.25)
    sums = [abs(sum(s * x for s, x in zip(signs, d, strict=True))) for signs in itertools.product((1, -1), repeat=4)]
    assert sum(s >= 0.55 - 1e-12 for s in sums) == 4
    assert sign_flip_test([0.0, 0.0, 0.0]) == 1.0  # no difference at all
    assert sign_flip_test([0.2] * 5) == pytest.approx(2 / 32)  # only all-+ and all-- reach |T|


def test_sign_flip_weights_by_hand() -> None:
    # two subsets of 1 and 3 queries, equal weight: T = 0.5*0.4 + 0.5*mean(0.1, 0.1, -0.2) = 0.2
    d, w = [0.4, 0.1, 0.1, -0.2], [0.5, 0.5 / 3, 0.5 / 3, 0.5 / 3]
    flips = [abs(sum(s * x * y for s, x, y in zip(signs, d, w, strict=True)))
             for signs in itertools.product((1, -1), repeat=4)]
    expect = sum(f >= 0.2 - 1e-12 for f in flips) / 16
    assert sign_flip_test(d, w) == pytest.approx(expect)
    # the other three weighted deltas sum to r in {+-1/15, +-1/30 (twice each), 0 (twice)}: |+-0.2 + r| >= 0.2
    # iff r is 0 or has the sign of the first term, 5 of 8 cases per sign -> 10/16
    assert expect == pytest.approx(10 / 16)


def _scipy_p(a: np.ndarray, b: np.ndarray, w: np.ndarray, resamples: float, seed: int = 1) -> float:
    from scipy import stats  # here, not at the top: 0.5 s at collection on every xdist worker

    res = stats.permutation_test((a, b), lambda x, y, axis: np.sum(w * (x - y), axis=axis),
                                 permutation_type="samples", n_resamples=resamples, vectorized=True,
                                 alternative="two-sided", rng=np.random.default_rng(seed))
    return float(res.pvalue)


@pytest.mark.slow
def test_sign_flip_matches_scipy_exact_and_monte_carlo() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.random(11), rng.random(11)
    w = rng.random(11)
    w /= w.sum()
    # 2**11 = 2048 <= resamples: both enumerate every flip -> identical p
    assert sign_flip_test(a - b, w, resamples=4096) == pytest.approx(_scipy_p(a, b, w, np.inf), abs=1e-12)
    # Monte Carlo on 300 queries with a modest effect: both estimate the same p
    a, b = rng.normal(0.5, 0.2, 300), rng.normal(0.5, 0.2, 300) - 0.02
    w = np.full(300, 1 / 300)
    ours = sign_flip_test(a - b, w, resamples=20_000, rng=np.random.default_rng(3))
    theirs = _scipy_p(a, b, w, 20_000)
    assert 0.02 < theirs < 0.5 and ours == pytest.approx(theirs, abs=0.015)


def test_bootstrap_matches_scipy_percentile() -> None:
    from scipy import stats

    rng = np.random.default_rng(11)
    x = rng.beta(2, 3, 200)
    boot = bootstrap_means([x[:, None]], 20_000, np.random.default_rng(5))[0]
    lo, hi = percentile_ci(boot)
    ref = stats.bootstrap((x,), np.mean, n_resamples=20_000, method="percentile", rng=np.random.default_rng(6))
    assert lo[0] == pytest.approx(ref.confidence_interval.low, abs=0.003)
    assert hi[0] == pytest.approx(ref.confidence_interval.high, abs=0.003)


@pytest.fixture(scope="session")
def write_per_query(write_results):
    """LoCoMo results with per-query values: {subset: {query id: ndcg_at_10}}; the score is their mean."""

    def write(root: Path, model: str, values: dict[str, dict[str, float]], setting: str = "wo_inst") -> None:
        write_results(root, model, setting, datasets=["LoCoMo"], subsets=lambda task: list(values),
                      scores=lambda task, i, name: {"ndcg_at_10": float(np.mean(list(values[name].values())))},
                      per_query=lambda task, name: values[name])

    return write


@pytest.fixture
def pair(tmp_path: Path, write_per_query) -> Path:
    # single_hop: 1 query (A +0.4); multi_hop: 4 queries, one only in A, B's ids in another order
    write_per_query(tmp_path, "org/A", {"single_hop": {"q1": 0.9},
                                        "multi_hop": {"m1": 0.5, "m2": 0.5, "m3": 0.2, "mx": 1.0}})
    write_per_query(tmp_path, "B", {"single_hop": {"q1": 0.5}, "multi_hop": {"m3": 0.4, "m2": 0.4, "m1": 0.4}})
    return tmp_path


def test_compare_pools_subsets_equally_and_aligns_ids(pair: Path) -> None:
    c = compare(load_results([pair], per_query=True), "A", "b", resamples=1000, seed=0)
    sub = c.subsets.set_index("subset")
    assert sub.loc["single_hop", "delta"] == pytest.approx(0.4)
    assert sub.loc["multi_hop", "delta"] == pytest.approx((0.1 + 0.1 - 0.2) / 3)  # mx dropped, m1..m3 aligned
    assert sub.loc["multi_hop", "queries"] == 3 and sub.loc["multi_hop", "dropped"] == 1
    ds = c.datasets.set_index("dataset")
    # dataset delta = mean of subset deltas (0.4 + 0) / 2, not the pooled query mean (0.4 / 4)
    assert ds.loc["LoCoMo", "delta"] == pytest.approx(0.2)
    assert ds.loc["LoCoMo", "a"] == pytest.approx((0.9 + 0.4) / 2)
    assert ds.loc["LoCoMo", "subsets"] == "2/5" and ds.loc["Mean (Dataset)", "delta"] == pytest.approx(0.2)
    # 4 queries, 16 flips enumerated: weights 1/2 and 1/6 -> see test_sign_flip_weights_by_hand's rule
    assert ds.loc["LoCoMo", "p_value"] == pytest.approx(
        sign_flip_test([0.4, 0.1, 0.1, -0.2], [0.5, 1 / 6, 1 / 6, 1 / 6]))
    assert c.summary["wins"] == 1 and c.summary["ties"] == 1 and c.summary["losses"] == 0
    assert ds.loc["LoCoMo", "delta_lo"] <= 0.2 <= ds.loc["LoCoMo", "delta_hi"]


def test_compare_is_deterministic(tmp_path: Path, write_per_query) -> None:
    rng = np.random.default_rng(0)
    for model in ("A", "B"):
        write_per_query(tmp_path, model, {"single_hop": {f"q{i}": float(rng.random()) for i in range(60)},
                                 "adversarial": {f"a{i}": float(rng.random()) for i in range(25)}})
    results = load_results([tmp_path], per_query=True)
    one = compare(results, "A", "B", resamples=500, seed=4)
    two = compare(results, "A", "B", resamples=500, seed=4)
    assert one.datasets.equals(two.datasets) and one.subsets.equals(two.subsets)
    other = compare(results, "A", "B", resamples=500, seed=5)
    assert not other.datasets[["a_lo", "a_hi", "p_value"]].equals(one.datasets[["a_lo", "a_hi", "p_value"]])
    assert other.datasets["delta"].equals(one.datasets["delta"])  # point estimates do not depend on the seed


def test_compare_errors_and_cli(pair: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = load_results([pair], per_query=True)
    with pytest.raises(LmebError, match=r"no per-query values for metric 'recall_at_10' \(available: ndcg_at_10\)"):
        compare(results, "A", "B", metric="recall_at_10")
    with pytest.raises(LmebError, match="did you mean org/A"):
        compare(results, "org/AA", "B")
    assert cli(["compare", "A", "B", "--results", str(pair), "--resamples", "200", "--format", "json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["summary"]["wins"] == 1 and obj["rows"][0]["dataset"] == "LoCoMo"
    assert cli(["compare", "A", "B", str(pair), "--subsets", "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    # LoCoMo is compared on 2 of its 5 subsets: the dataset row is a count (no mean), its subsets are numbers
    assert "single_hop" in out and "A wins 1, ties 1, losses 0" in out and "+40.00" in out and "2/5*" in out


def test_compare_names_missing_sidecars(tmp_path: Path, write_results) -> None:
    """A deleted .per_query.json: the dataset is left out with a warning naming the file; with nothing left to
    compare, the error names it."""
    from lmeb.errors import LmebWarning
    from lmeb.results.dataset_result import sidecar_path

    def one(task, name: str) -> dict[str, float]:
        return {f"{task.name}-{name}-q{i}": 0.1 * i for i in range(3)}

    paths = {model: write_results(tmp_path, model, datasets=["LoCoMo", "Gorilla"],
                                  subsets=lambda task: task.subset_names[:1],
                                  scores=lambda task, i, name: {"ndcg_at_10": 0.1}, per_query=one)
             for model in ("A", "B")}
    files = {p.stem: p for p in paths["B"]}
    gone = sidecar_path(files["Gorilla"])
    gone.unlink()
    with pytest.warns(LmebWarning, match=rf"{gone.name} missing, so those datasets are left out.*rerun lmeb run"):
        c = compare(load_results([tmp_path], per_query=True), "A", "B", resamples=100, seed=0)
    assert list(c.subsets["dataset"]) == ["LoCoMo"]
    sidecar_path(files["LoCoMo"]).unlink()
    with pytest.raises(LmebError, match=r"no aligned per-query values of ndcg_at_10: .*LoCoMo.*missing \(rerun"):
        compare(load_results([tmp_path], per_query=True), "A", "B", resamples=100, seed=0)
