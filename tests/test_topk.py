"""lmeb.engine.topk: the streaming whole-corpus top-k equals a full sort under the tie rule, threads or not."""

from __future__ import annotations

import numpy as np
import pytest

import lmeb.engine.topk as topk
from lmeb.engine.retrieval import _normalize
from lmeb.engine.topk import key_scores, score_keys, stream_top_k
from lmeb.errors import LmebError
from lmeb.ordering import DocIndex, top_k


@pytest.mark.parametrize("threaded", [False, True])
def test_stream_top_k_equals_a_full_sort_with_ties(monkeypatch, threaded: bool) -> None:
    if threaded:  # every block's merge split over threads
        monkeypatch.setattr(topk, "_MIN_CELLS_PER_THREAD", 1)
        monkeypatch.setattr(topk, "_THREADS", 3)
    rng = np.random.default_rng(7)
    for _ in range(25):
        n, nq, k = int(rng.integers(1, 1500)), int(rng.integers(1, 30)), int(rng.integers(1, 200))
        d = rng.integers(-3, 4, size=(n, 6)).astype(np.float32)  # small integers: many tied scores
        q = rng.integers(-3, 4, size=(nq, 6)).astype(np.float32)
        ids = DocIndex.of([f"d{rng.integers(0, 10**6)}_{i}" for i in range(n)])
        rows, scores = stream_top_k(q, d, ids.ranks, k, None, doc_block=int(rng.integers(1, 400)),
                                    max_cells=int(rng.integers(1, 3000)))
        for i in range(nq):
            expected = top_k(q[i] @ d.T, None, ids, k)
            assert list(zip(ids.names[rows[i]].tolist(), scores[i].tolist(), strict=True)) == list(expected.items())


def test_keys_order_scores_then_ids() -> None:
    scores = np.array([0.5, -0.0, 0.0, -1.5, np.float32(3e38), -np.inf], dtype=np.float32)
    ranks = np.array([1, 0, 5, 2, 3, 4])
    keys = score_keys(scores, ranks)
    assert np.array_equal(key_scores(keys), scores + np.float32(0.0))
    order = np.argsort(-keys, kind="stable")
    assert order.tolist() == [4, 0, 2, 1, 3, 5]  # 0.0 and -0.0 tie: the larger id rank first


def test_cosine_prepare_and_bad_vectors() -> None:
    rng = np.random.default_rng(0)
    d, q = rng.standard_normal((300, 8)).astype(np.float32), _normalize(rng.standard_normal((4, 8)).astype(np.float32))
    ids = DocIndex.of([f"x{i}" for i in range(300)])
    _rows, scores = stream_top_k(q, d, ids.ranks, 10, _normalize, doc_block=300)
    assert np.allclose(scores, np.sort(q @ _normalize(d).T, axis=1)[:, ::-1][:, :10])
    d[7, 3] = np.nan
    with pytest.raises(LmebError, match="NaN or infinite document"):
        stream_top_k(q, d, ids.ranks, 10, _normalize)
