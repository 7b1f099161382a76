"""How much the KaLM passage cache saves: rerank BM25's top k with and without reusing passage states.

Run by hand (a few seconds to a minute on CPU with the tiny model):

    .venv/bin/python benchmarks/bench_kalm_cache.py                       # Gorilla/gorilla_tensor, BM25 top 20
    .venv/bin/python benchmarks/bench_kalm_cache.py --task LoCoMo --subset single_hop --queries 48 --top-k 50
    .venv/bin/python benchmarks/bench_kalm_cache.py --model /models/KaLM-Reranker-V1-Nano --device cuda

"without" encodes the passage once per (query, passage) pair, as the reference wrapper does; "with"
encodes each unique passage once and reuses its pooled states (the same code path otherwise). Both
rerank the same pairs; the script checks their scores agree and prints times, encoder passes and the
speed-up. Data: ``--data`` or $LMEB_DATA, default ../shared/data/eval_data beside the repository.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(SHARED / "kalm_tiny" / "tiny_model"))
    parser.add_argument("--data", default=os.environ.get("LMEB_DATA", str(SHARED / "data" / "eval_data")))
    parser.add_argument("--task", default="Gorilla")
    parser.add_argument("--subset", default="gorilla_tensor")
    parser.add_argument("--queries", type=int, default=64, help="first N queries of the subset")
    parser.add_argument("--top-k", type=int, default=20, help="BM25 documents reranked per query")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()

    import torch

    from lmeb.data.reader import load_subset
    from lmeb.engine.rerank import rerank
    from lmeb.engine.retrieval import search_subset
    from lmeb.models.kalm import KalmReranker
    from lmeb.models.registry import load_model
    from lmeb.ordering import ranking
    from lmeb.tasks.registry import get_task

    torch.set_num_threads(args.threads)
    subset = load_subset(get_task(args.task), args.data, args.subset)
    subset.query_ids, subset.query_texts = subset.query_ids[:args.queries], subset.query_texts[:args.queries]
    stage1 = search_subset(load_model("bm25"), subset, args.top_k)
    heads = [d for q in subset.query_ids for d, _ in ranking(stage1[q])[:args.top_k]]
    pairs, unique = len(heads), len(set(heads))
    print(f"{args.task}/{args.subset}: {len(subset.query_ids)} queries, BM25 top {args.top_k}: {pairs} pairs over "
          f"{unique} unique passages ({pairs / max(unique, 1):.1f} queries per passage)")

    results = {}
    for label, share in (("without cache", False), ("with cache", True)):
        model = KalmReranker(args.model, batch_size=args.batch_size, device=args.device, share_passages=share)
        rerank(subset, {q: dict(list(stage1[q].items())[:2]) for q in subset.query_ids[:2]}, model, 2)  # warm-up
        model.stats = dict.fromkeys(model.stats, 0)
        model.ram_cache = type(model.ram_cache)(model.ram_cache.max_bytes)
        started = time.perf_counter()
        run = rerank(subset, stage1, model, args.top_k)
        seconds = time.perf_counter() - started
        results[label] = (seconds, run)
        print(f"  {label:14s} {seconds:7.2f} s   encoder passes {model.stats['encoded']:6d}   "
              f"decoder pairs {model.stats['pairs']:6d}   ({model.stats['encoder_batches']} encoder / "
              f"{model.stats['decoder_batches']} decoder batches)")
    (slow, a), (fast, b) = results["without cache"], results["with cache"]
    same = all(list(a[q]) == list(b[q]) for q in subset.query_ids)
    print(f"  speed-up {slow / fast:.2f}x; identical rankings: {same}")


if __name__ == "__main__":
    main()
