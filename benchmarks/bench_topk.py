"""Whole-corpus search at the limit: lmeb's streaming exact top-k against the machine's own float32 matmul.

Run by hand (the full MemBench shape takes minutes on a laptop; scale it down with --docs/--queries):

    .venv/bin/python benchmarks/bench_topk.py                                  # 930k docs, 10k queries, 384-d
    .venv/bin/python benchmarks/bench_topk.py --docs 100000 --queries 2000     # a quick look

Data: random float32 vectors of MemBench's shape (929,115 documents in its ten corpora, 10k queries,
384 dimensions, all-MiniLM-L6-v2's size), generated in blocks. Two passes over the same blocks and
shapes (``lmeb.engine.retrieval``'s document chunk and cells per product):

* baseline: the float32 matrix products alone (queries x block, then dropped): the machine's own rate;
* lmeb: ``lmeb.engine.topk.stream_top_k`` with cosine normalisation per block, the running exact top k
  (default 1000 = lmeb's search depth).

Prints both rates in GFLOP/s, their ratio (target >= 0.50), and the peak RSS against the vectors' size
+ 1 GiB (target: at most that). ``--check`` also compares a sample of queries with a plain full sort.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lmeb.engine.retrieval import _DOC_CHUNK, _MAX_BLOCK, _normalize
from lmeb.engine.topk import stream_top_k
from lmeb.ordering import DocIndex, top_k


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def random_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    rng = np.random.default_rng(seed)
    for lo in range(0, n, 1 << 16):
        out[lo:lo + (1 << 16)] = rng.standard_normal((min(1 << 16, n - lo), dim), dtype=np.float32)
    return out


def matmul_pass(q: np.ndarray, d: np.ndarray) -> float:
    """Seconds for the products alone, in the same blocks and shapes as the search."""
    started = time.perf_counter()
    for lo in range(0, d.shape[0], _DOC_CHUNK):
        chunk = d[lo:lo + _DOC_CHUNK]
        step = max(1, _MAX_BLOCK // chunk.shape[0])
        for start in range(0, q.shape[0], step):
            sims = q[start:start + step] @ chunk.T
            del sims
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=929_115)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--check", type=int, default=0, metavar="N", help="verify N queries against a full sort")
    args = parser.parse_args()

    d = random_vectors(args.docs, args.dim, 1)
    q = _normalize(random_vectors(args.queries, args.dim, 2))
    ids = DocIndex.of([f"doc{i:07d}" for i in range(args.docs)])
    vectors_gib = (d.nbytes + q.nbytes) / 2**30
    flop = 2.0 * args.docs * args.queries * args.dim

    base = matmul_pass(q, d)
    started = time.perf_counter()
    _rows, scores = stream_top_k(q, d, ids.ranks, args.k, _normalize, _DOC_CHUNK, _MAX_BLOCK)
    ours = time.perf_counter() - started
    peak = peak_rss_gib()

    if args.check:
        for i in np.linspace(0, args.queries - 1, args.check).astype(int):
            ref = list(top_k(_normalize(d) @ q[i], None, ids, args.k + 1).values())
            assert np.all(np.diff(scores[i]) <= 0), f"query {i}: not in rank order"
            assert np.allclose(scores[i], ref[:args.k], atol=1e-5), f"query {i}: scores differ from a full sort"
        print(f"check: {args.check} queries match a full sort (to float32 rounding of a matrix-vector product)")
    ratio = base / ours
    limit = vectors_gib + 1.0
    print(f"shape: {args.docs:,} documents x {args.queries:,} queries x {args.dim}-d float32, top {args.k}")
    print(f"matmul alone: {base:.2f}s = {flop / base / 1e9:.1f} GFLOP/s")
    print(f"lmeb stream_top_k: {ours:.2f}s = {flop / ours / 1e9:.1f} GFLOP/s")
    print(f"throughput ratio: {ratio:.3f} of matmul (target >= 0.50) {'OK' if ratio >= 0.5 else 'BELOW TARGET'}")
    print(f"peak RSS: {peak:.2f} GiB; vectors {vectors_gib:.2f} GiB + 1 GiB = {limit:.2f} GiB "
          f"{'OK' if peak <= limit else 'ABOVE TARGET'}")


if __name__ == "__main__":
    main()
