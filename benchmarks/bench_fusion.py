"""Time hybrid fusion against its parts' retrieval on MemBench-shaped synthetic data (no model needed).

Shape (lmeb_spec/published_stats/MemBench.json): 929,115 documents of ~240 characters, 10,000 queries,
each ranking its own candidate pool of 8-194 documents (93 on average). Two parts, each run through its
real strategy (``lmeb.engine.strategy``) as a hybrid runs it, "once cached":

* dense: ``DenseRetrieval`` with a WARM disk cache (filled by an untimed first pass of a random-vector
  encoder), so its time is reading the cached vectors + exact search over the candidates;
* lexical: ``SearcherRetrieval`` with lmeb's ``BM25Searcher`` (bm25s): indexing the corpus and scoring
  the candidates (BM25 has no disk cache: a rerun indexes again).

Then ``lmeb.engine.fusion.fuse_runs`` fuses the two runs (rrf and minmax; sorting the corpus ids for the tie
rule included). Times are CPU seconds of this process (``time.process_time``, BLAS pinned to one thread),
so the ratio holds on a shared machine. Printed: each time and fusion / parts (target <= 0.10).
``--no-bm25`` leaves BM25 out (parts = dense only: a lower bound on what the parts cost).

Run by hand (not in CI), e.g.:
  .venv/bin/python benchmarks/bench_fusion.py                  # 929,115 documents (GBs of RAM, minutes)
  .venv/bin/python benchmarks/bench_fusion.py --docs 100000    # smaller
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lmeb.engine.fusion import fuse_runs  # noqa: E402
from lmeb.engine.strategy import DenseRetrieval, SearcherRetrieval  # noqa: E402
from lmeb.models.bm25 import BM25Searcher  # noqa: E402
from lmeb.ordering import DocIndex  # noqa: E402

WORDS = [f"w{i}" for i in range(5000)]


class RandomEncoder:
    """Random unit-scale vectors (what they are does not matter: only the cache reads and search are timed)."""

    def __init__(self, dim: int) -> None:
        self.dim, self.rng = dim, np.random.default_rng(1)

    def config(self) -> dict:
        return {"class": "bench_fusion.RandomEncoder", "dim": self.dim}

    def encode(self, texts: list[str], kind: str = "query", instruction: str | None = None) -> np.ndarray:
        return self.rng.standard_normal((len(texts), self.dim), dtype=np.float32)


def synthetic(docs: int, seed: int) -> tuple[SimpleNamespace, list[np.ndarray]]:
    """A subset of ``docs`` documents (~36 words) cut into candidate pools of 8-194, one query per pool."""
    rng = np.random.default_rng(seed)
    sizes = []
    left = docs
    while left > 0:
        n = int(min(left, rng.integers(8, 195)))
        sizes.append(n)
        left -= n
    ids = [f"membench_{i:07d}" for i in rng.permutation(docs)]
    words = np.asarray(WORDS, dtype=object)[rng.zipf(1.3, size=(docs, 36)) % len(WORDS)]
    texts = [" ".join(row) for row in words.tolist()]
    bounds = np.cumsum([0, *sizes])
    rows = [np.arange(lo, hi, dtype=np.int64) for lo, hi in itertools.pairwise(bounds)]
    for r in rows:
        r.flags.writeable = False
    query_words = np.asarray(WORDS, dtype=object)[rng.zipf(1.3, size=(len(rows), 8)) % len(WORDS)]
    corpus = SimpleNamespace(ids=ids, texts=texts, row={d: i for i, d in enumerate(ids)})
    subset = SimpleNamespace(corpus=corpus, query_ids=[f"q{i}" for i in range(len(rows))],
                             query_texts=[" ".join(q) for q in query_words.tolist()], scenes=None)
    return subset, rows


def timed(fn, *args, **kwargs):
    """(result, CPU seconds): CPU time does not depend on what else a shared machine runs."""
    start = time.process_time()
    out = fn(*args, **kwargs)
    return out, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=929_115, help="documents (default: MemBench's 929,115)")
    parser.add_argument("--dim", type=int, default=384, help="vector width of the dense part (default 384)")
    parser.add_argument("--no-bm25", action="store_true", help="parts = the dense part only (a lower bound)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    subset, rows = synthetic(args.docs, args.seed)
    print(f"{args.docs:,} documents, {len(rows):,} queries, {np.mean([r.shape[0] for r in rows]):.1f} "
          f"candidates per query, dim {args.dim}")
    with tempfile.TemporaryDirectory(prefix="bench-fusion-") as cache:
        encoder = RandomEncoder(args.dim)
        DenseRetrieval(encoder, Path(cache), None).run(subset, rows, 1000, None, {})  # fills the cache (untimed)
        dense, t_dense = timed(DenseRetrieval(encoder, Path(cache), None).run, subset, rows, 1000, None, {})
    runs, parts = [dense], t_dense
    print(f"part dense (warm cache): {t_dense:.2f}s")
    if not args.no_bm25:
        lexical, t_lex = timed(SearcherRetrieval(BM25Searcher()).run, subset, rows, 1000, None, {})
        runs.insert(0, lexical)
        parts += t_lex
        print(f"part bm25 (index + search): {t_lex:.2f}s")
    else:
        runs.insert(0, dense)
    _, t_index = timed(DocIndex.of, subset.corpus.ids)
    print(f"parts: {parts:.2f}s; one DocIndex (sorting the ids for the tie rule) costs {t_index:.2f}s")
    for method in ("rrf", "minmax"):
        fused, t_fuse = timed(fuse_runs, subset, runs, method, [1.0, 1.0] if method == "rrf" else [0.5, 0.5],
                              60, 1000)
        assert all(len(fused[q]) == r.shape[0] for q, r in zip(subset.query_ids, rows, strict=True))
        print(f"fusion {method}: {t_fuse:.2f}s = {t_fuse / parts:.3f} x parts (target <= 0.10)")


if __name__ == "__main__":
    main()
