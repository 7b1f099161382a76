"""lmeb.engine.fusion (with fuse_runs) against an independent reference written here from the formulas.

ranx (the peers' reference implementation) pulls numba and friends, so it is not a test dependency: the
reference below is plain Python over dicts, from the definitions (Cormack et al. 2009 for RRF; min-max and
z-score convex combination as ranx's ``wsum``; mteb 2.26's ``fuse_dbsf``), with lmeb's documented choice
for a document missing from a part's list (that part's minimum normalised score). The fused rankings
must be identical up to ties (scores equal within 1e-12). mteb 2.26's own HybridSearch fusion functions
(installed with mteb) are a second, peer reference where their conventions and lmeb's coincide.
"""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import numpy as np
import pytest

from lmeb.engine.fusion import METHODS, check_weights, default_weights, fuse, fuse_runs, normalise
from lmeb.errors import LmebError


def _order(scores: dict[str, float]) -> list[tuple[str, float]]:
    """The tie rule, independently: score descending, then document id descending."""
    return sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)


def _normalised(values: list[float], method: str) -> list[float]:
    n = len(values)
    if method == "minmax":
        lo, hi = min(values), max(values)
        return [(v - lo) / (hi - lo) if hi - lo > 1e-9 else 0.0 for v in values]
    mu = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mu) ** 2 for v in values) / n)
    if method == "zscore":
        return [(v - mu) / sd if sd > 1e-9 else 0.0 for v in values]
    if sd < 1e-9:  # dbsf
        return [0.5] * n
    return [min(1.0, max(0.0, (v - (mu - 3 * sd)) / (6 * sd))) for v in values]


def reference(lists: list[dict[str, float]], method: str, weights: list[float], k: int = 60) -> dict[str, float]:
    """Fused score of every document in any list, from the formulas."""
    docs = {d for lst in lists for d in lst}
    fused = dict.fromkeys(docs, 0.0)
    for lst, w in zip(lists, weights, strict=True):
        ranked = _order(lst)
        if method == "rrf":
            contrib = {d: 1.0 / (k + r) for r, (d, _) in enumerate(ranked, start=1)}
            floor = 0.0
        else:
            normal = _normalised([s for _, s in ranked], method)
            contrib = {d: v for (d, _), v in zip(ranked, normal, strict=True)}
            floor = min(normal) if normal else 0.0
        for d in docs:
            fused[d] += w * contrib.get(d, floor)
    return fused


def assert_same_ranking(got: dict[str, float], ref: dict[str, float], k: int) -> None:
    """Same documents in the top ``k``; lmeb's order is non-increasing in the reference scores (ties aside)."""
    expected = _order(ref)[:k]
    assert list(got) and len(got) == len(expected)
    for (doc, score), (_, ref_score) in zip(got.items(), expected, strict=True):
        assert score == pytest.approx(ref[doc], rel=1e-12, abs=1e-12)
        assert score == pytest.approx(ref_score, rel=1e-12, abs=1e-12)  # the same score at every rank
    cut = expected[-1][1]
    assert {d for d, s in expected if s > cut + 1e-12} <= set(got)  # only documents tied at the cut may differ
    ranked = list(got)
    assert ranked == [d for d, _ in _order(got)]  # lmeb's own order follows the tie rule


def _random_runs(rng: random.Random, n_docs: int, parts: int, depth: int, ties: bool) -> list[dict[str, float]]:
    ids = [f"d{i:03d}" for i in range(n_docs)]
    runs = []
    for p in range(parts):
        if ties:
            scores = {d: float(rng.randint(0, 4)) for d in ids}
        elif p % 2:
            scores = {d: float(np.float32(rng.uniform(-1, 1))) for d in ids}
        else:
            scores = {d: rng.expovariate(0.2) for d in ids}
        runs.append(dict(_order(scores)[:depth]))
    return runs


def _subset(ids: list[str], qids: list[str]) -> SimpleNamespace:
    corpus = SimpleNamespace(ids=ids, row={d: i for i, d in enumerate(ids)})
    return SimpleNamespace(corpus=corpus, query_ids=qids)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("depth", [40, 15])
def test_fuse_runs_matches_reference(method: str, ties: bool, depth: int) -> None:
    """Two and three parts, with ties and with documents missing from some lists (depth < pool)."""
    rng = random.Random(f"{method}{ties}{depth}")
    for parts in (2, 3):
        weights = default_weights(method, parts) if parts == 2 else [0.2, 0.5, 0.3]
        ids = [f"d{i:03d}" for i in range(40)]
        qids = ["q1", "q2", "q3"]
        per_query = {q: _random_runs(rng, 40, parts, depth, ties) for q in qids}
        runs = [{q: per_query[q][p] for q in qids} for p in range(parts)]
        for k in (10, 1000):
            fused = fuse_runs(_subset(ids, qids), runs, method, weights, 60, k)
            for q in qids:
                assert_same_ranking(fused[q], reference(per_query[q], method, weights), k)


def test_rrf_is_exact_and_uses_k() -> None:
    """RRF scores are the formula's, bit for bit; k changes them."""
    rows = [np.array([3, 1, 2]), np.array([2, 3])]
    scores = [np.array([9.0, 5.0, 1.0]), np.array([0.9, 0.1])]
    union, fused = fuse(rows, scores, "rrf", [1.0, 1.0], rrf_k=60)
    assert union.tolist() == [1, 2, 3]
    assert fused.tolist() == [1 / 62, 1 / 63 + 1 / 61, 1 / 61 + 1 / 62]
    _, fused_k1 = fuse(rows, scores, "rrf", [1.0, 2.0], rrf_k=1)
    assert fused_k1.tolist() == [1 / 3, 1 / 4 + 2 / 2, 1 / 2 + 2 / 3]


def test_normalisations_and_missing_documents() -> None:
    """min-max to [0, 1]; a flat list carries no preference; a missing document gets the part's minimum."""
    assert normalise(np.array([2.0, 4.0, 3.0]), "minmax").tolist() == [0.0, 1.0, 0.5]
    assert normalise(np.array([7.0, 7.0]), "minmax").tolist() == [0.0, 0.0]
    assert normalise(np.array([7.0, 7.0]), "dbsf").tolist() == [0.5, 0.5]
    z = normalise(np.array([1.0, 2.0, 3.0]), "zscore")
    assert z.tolist() == pytest.approx([-math.sqrt(1.5), 0.0, math.sqrt(1.5)])
    union, fused = fuse([np.array([0, 1, 2]), np.array([1])], [np.array([1.0, 2.0, 3.0]), np.array([5.0])],
                        "zscore", [0.5, 0.5])
    assert union.tolist() == [0, 1, 2]
    assert fused.tolist() == pytest.approx([0.5 * z[0], 0.5 * z[1], 0.5 * z[2]])  # part 2 is flat: 0 everywhere


def test_weights_are_checked() -> None:
    assert check_weights(None, "rrf", 2) == [1.0, 1.0]
    assert check_weights(None, "minmax", 4) == [0.25] * 4
    for bad in ([1.0], [1.0, -1.0], [0.0, 0.0], [float("nan"), 1.0]):
        with pytest.raises(LmebError, match="weight"):
            check_weights(bad, "minmax", 2)


@pytest.mark.slow  # importing mteb takes tens of seconds
@pytest.mark.parametrize(("method", "peer"), [("rrf", "fuse_rrf"), ("minmax", "fuse_relative_score_fusion"),
                                              ("dbsf", "fuse_dbsf")])
def test_same_fused_ranking_as_mteb_hybrid_search(method: str, peer: str) -> None:
    """mteb 2.26's own fusion functions (HybridSearch) on the same lists: the same ranking up to ties. Every
    part lists the whole pool and no list is flat, where mteb's conventions and lmeb's coincide."""
    hybrid = pytest.importorskip("mteb.models.hybrid_wrappers")
    rng = random.Random(method)
    ids = [f"d{i:03d}" for i in range(60)]
    for _ in range(5):
        lists = [{d: rng.expovariate(0.2) for d in ids}, {d: float(np.float32(rng.uniform(-1, 1))) for d in ids}]
        weights = [0.4, 0.6]
        theirs = getattr(hybrid, peer)(lists, weights)
        ours = fuse_runs(_subset(ids, ["q"]), [{"q": dict(_order(lst))} for lst in lists], method, weights, 60, 1000)
        assert_same_ranking(ours["q"], dict(theirs), 1000)
