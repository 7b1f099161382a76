"""Evaluate a model on LMEB datasets and write one results file per dataset (mteb layout + provenance).

Examples:
  lmeb run --model bm25 --tasks LoCoMo --data DATA --output results
  lmeb run --model sentence-transformers/all-MiniLM-L6-v2 --type Dialogue --data DATA --output results
  lmeb run --model hf:/models/my-encoder --pooling mean --all --data DATA --output results --setting w_inst
  lmeb run --preset Qwen3-Embedding-0.6B --model-path /models/qwen3-0.6b --all --data DATA --output results
  lmeb run --model bm25 --reranker cross-encoder:/models/ms-marco --rerank-top-k 100 --all ...

MODEL is bm25, a sentence-transformers directory or hub id, hf:PATH (plain transformers with the
pooling options), kalm:PATH or cross-encoder:PATH (a reranker scoring every candidate),
openai:MODEL (an OpenAI-compatible embeddings API), mteb:NAME (a model from mteb's registry),
hybrid:bm25+PATH (fused parts), or a prefix an installed package adds (the lmeb.models entry points).
--preset NAME is a paper model with its official settings: lmeb presets lists them (the paper's
spellings work too).
Results go to OUTPUT/<model-name>/<setting>/<Dataset>.json; a rerun skips subsets already there for
the same configuration and data (--overwrite redoes them), so an interrupted run resumes.
Embeddings are cached in --cache-dir, $LMEB_CACHE or ~/.cache/lmeb: a rerun encodes nothing it has seen.
Progress bars go to stderr only when it is a terminal (a log file gets none); --progress/--no-progress
force them on or off.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lmeb.cli.options import add_progress, add_selection, reporter
from lmeb.errors import LmebError
from lmeb.models.hf import POOLINGS
from lmeb.models.loading import PRECISIONS
from lmeb.models.registry import model_prefixes
from lmeb.tasks.settings import SETTINGS
from lmeb.wording import counted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    model = parser.add_argument_group("model")
    model.add_argument("--model", metavar="MODEL", help="bm25, a sentence-transformers dir or hub id, or "
                       f"PREFIX:SPEC with PREFIX one of {', '.join(model_prefixes())} (optional with --preset)")
    model.add_argument("--name", help="model name in the results folder (default: bm25, the directory name or "
                       "the hub id as org__name; <retriever>+rerank+<reranker> with --reranker)")
    model.add_argument("--preset", metavar="NAME", help="a paper model's official settings (pooling, template...)")
    model.add_argument("--model-path", metavar="DIR", help="local weights for --preset")
    model.add_argument("--batch-size", type=int, metavar="N", help="texts per forward pass")
    model.add_argument("--max-batch-tokens", type=int, metavar="N",
                       help="hf: models: batches of at most N padded tokens instead of --batch-size texts; "
                       "openai: models: at most N estimated tokens per request (default 8000)")
    model.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: the best available)")
    model.add_argument("--pooling", choices=POOLINGS, help="hf: models: how token states become one vector")
    model.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                       help="hf: models: L2-normalise the vectors")
    model.add_argument("--max-length", type=int, metavar="N", help="truncate texts to N tokens")
    model.add_argument("--precision", choices=PRECISIONS, help="weights dtype (default fp32)")
    model.add_argument("--padding-side", choices=("left", "right"), help="hf: models: where padding goes")
    model.add_argument("--trust-remote-code", action="store_true", default=None,
                       help="allow a model's own Python code")
    model.add_argument("--instruction-template", metavar="T",
                       help="w_inst query prefix, '{}' = the task instruction (default 'Instruct: {}\\nQuery:')")
    hybrid = parser.add_argument_group("hybrid: models (--model 'hybrid:bm25+PATH': parts fused per query)")
    hybrid.add_argument("--fusion", choices=("rrf", "minmax", "zscore", "dbsf"),
                        help="how the parts' lists are fused (default rrf; see docs/hybrid.md)")
    hybrid.add_argument("--fusion-weights", metavar="W1,W2", help="one weight per part, e.g. 0.3,0.7 "
                        "(default 1 each for rrf, 1/n for the others), or auto: per memory type by 5-fold "
                        "cross-validation over the queries (marked in tables)")
    hybrid.add_argument("--rrf-k", type=int, metavar="K", help="RRF's k (default 60)")
    hybrid.add_argument("--fusion-depth", type=int, metavar="N", help="each part's list length fused per "
                        "query (default 1000: the whole candidate pool up to 1000)")
    api = parser.add_argument_group("openai: models (any OpenAI-compatible /v1/embeddings server)")
    api.add_argument("--api-base", metavar="URL", help="server URL, e.g. http://127.0.0.1:8000/v1 "
                     "(default $OPENAI_BASE_URL or OpenAI's)")
    api.add_argument("--api-key-env", metavar="NAME", help="environment variable holding the key (default "
                     "OPENAI_API_KEY)")
    api.add_argument("--dimensions", type=int, metavar="N", help="ask the server for N-dimensional vectors")
    api.add_argument("--concurrency", type=int, metavar="N", help="requests in flight at once (default 4)")
    api.add_argument("--max-retries", type=int, metavar="N", help="retries of a failed request (default 6)")
    api.add_argument("--request-timeout", type=float, metavar="S", help="seconds per request (default 60)")
    model.add_argument("--reranker", metavar="SPEC", help="rerank the first stage with kalm:PATH or "
                       "cross-encoder:PATH")
    model.add_argument("--rerank-top-k", type=int, default=100, metavar="K",
                       help="first-stage documents reranked per query (default 100)")
    model.add_argument("--allow-new-head", action="store_true", default=None,
                       help="score with a cross-encoder checkpoint that has no trained classification head "
                       "(refused by default: its head would be randomly initialised)")

    what = add_selection(parser, all_help="every LMEB dataset present under --data")
    what.add_argument("--data", metavar="DIR", help="data root in the official layout (default $LMEB_DATA; "
                      "without either, the selected datasets are fetched into ~/.cache/lmeb/data)")
    what.add_argument("--no-download", action="store_true", help="never fetch data (see lmeb download)")
    what.add_argument("--source", choices=("official", "mteb"), default="official",
                      help="where fetched data comes from: KaLM-Embedding/LMEB (default) or mteb's mteb/<Name> copies")
    what.add_argument("--setting", choices=SETTINGS, default="wo_inst",
                      help="wo_inst: plain queries (default); w_inst: queries prefixed with the task instruction")

    what.add_argument("--scope", choices=("pool", "corpus"), default="pool",
                      help="what each query is ranked among: pool = its scene's candidates (LMEB, default), "
                           "corpus = the whole subset corpus; results named MODEL@corpus (docs/growth.md)")
    what.add_argument("--distractors", metavar="N,N", help="one run per factor: each pool plus N times its size "
                      "in documents of other scenes (results named MODEL@xN), e.g. 4,16,64")
    what.add_argument("--seed", type=int, default=0, help="the distractor draw's seed, recorded (default 0)")

    scale = parser.add_argument_group("scale out on Ray (pip install 'lmeb[ray]')")
    scale.add_argument("--ray", nargs="?", const="auto", metavar="ADDRESS",
                       help="encode/rerank on Ray workers: auto (default) joins $RAY_ADDRESS or starts a local "
                       "instance; or HOST:PORT / ray://HOST:PORT of a cluster")
    scale.add_argument("--workers", type=int, metavar="N", help="Ray workers, one model replica each "
                       "(default: one per GPU, else one per 2 CPU cores)")
    scale.add_argument("--gpus-per-worker", type=float, metavar="G", help="GPUs per worker (default 1 on a "
                       "cluster with GPUs, else 0)")
    scale.add_argument("--ray-timeout", type=float, metavar="S", help="seconds to wait for a --ray HOST:PORT to "
                       "answer before failing (default 30, or $LMEB_RAY_TIMEOUT)")
    scale.add_argument("--cpus-per-worker", type=float, metavar="C", help="CPUs per worker (default 1 with "
                       "GPUs, else the CPUs divided by the workers); also its torch threads")

    out = parser.add_argument_group("output")
    out.add_argument("--output", metavar="DIR", default="results", help="results root (default ./results)")
    out.add_argument("--overwrite", action="store_true", help="re-evaluate subsets already in the results")
    out.add_argument("--save-runs", action="store_true", help="also write TREC run files <Dataset>.runs/<subset>.trec")
    cache = out.add_mutually_exclusive_group()
    cache.add_argument("--cache-dir", metavar="DIR", help="embedding cache (default $LMEB_CACHE or ~/.cache/lmeb)")
    cache.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    add_progress(out)


def _model_options(args: argparse.Namespace) -> dict[str, Any]:
    """The model options the user gave (unset ones are left to the adapter's defaults)."""
    pairs = {
        "batch_size": args.batch_size, "max_batch_tokens": args.max_batch_tokens, "device": args.device,
        "pooling": args.pooling, "normalize": args.normalize,
        "max_length": args.max_length, "precision": args.precision, "padding_side": args.padding_side,
        "trust_remote_code": args.trust_remote_code, "instruction_template": args.instruction_template,
        "api_base": args.api_base, "api_key_env": args.api_key_env, "dimensions": args.dimensions,
        "concurrency": args.concurrency, "max_retries": args.max_retries, "timeout": args.request_timeout,
        "fusion": args.fusion, "fusion_weights": args.fusion_weights, "rrf_k": args.rrf_k,
        "fusion_depth": args.fusion_depth,
    }
    return {k: v for k, v in pairs.items() if v is not None}


def _check_args(args: argparse.Namespace) -> None:
    if not args.model and not args.preset:
        raise LmebError("give a model: --model MODEL or --preset NAME --model-path DIR")
    if not (args.tasks or args.all or args.type):
        raise LmebError("choose what to evaluate: --tasks A,B[/subset], --type TYPE or --all")
    if args.batch_size is not None and args.batch_size < 1:
        raise LmebError("--batch-size must be at least 1")
    if not args.ray and (args.workers or args.gpus_per_worker is not None or args.cpus_per_worker is not None
                         or args.ray_timeout is not None):
        raise LmebError("--workers, --gpus-per-worker, --cpus-per-worker and --ray-timeout go with --ray")


def _options(args: argparse.Namespace, reranker_options: dict[str, Any]) -> Any:
    """The run's ``EvalOptions`` (with a ``Scale`` under --ray), checked once where built."""
    from lmeb.engine.growth import parse_distractors
    from lmeb.engine.options import EvalOptions, Scale

    scale = (Scale(args.ray, workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                   cpus_per_worker=args.cpus_per_worker, timeout=args.ray_timeout) if args.ray else None)
    return EvalOptions(types=tuple(args.type or ()), rerank_top_k=args.rerank_top_k,
                       reranker_options=reranker_options, overwrite=args.overwrite, save_runs=args.save_runs,
                       scope=args.scope, distractors=tuple(parse_distractors(args.distractors)), seed=args.seed,
                       download=not args.no_download, source=args.source, scale=scale)


def main(args: argparse.Namespace) -> int:
    """``lmeb.evaluate`` with the command line's options, then the summary table (one per scope run)."""
    from lmeb.api import evaluate
    from lmeb.cache import DEFAULT_CACHE
    from lmeb.models.registry import is_bm25_spec

    _check_args(args)
    options = _model_options(args)
    if args.preset:
        options.update(preset=args.preset, model_path=args.model_path)
    elif args.model_path:
        raise LmebError("--model-path goes with --preset (give the model itself with --model)")
    rr_options = {k: v for k, v in options.items() if k in ("batch_size", "device", "precision", "max_length")}
    if args.allow_new_head:  # the reranker's, or the model's when it is the cross-encoder itself
        (rr_options if args.reranker else options)["allow_new_head"] = True
    if args.reranker and is_bm25_spec(args.model):  # BM25 takes none of them: they are the reranker's
        options = {k: v for k, v in options.items() if k not in rr_options}
    cache_dir = None if args.no_cache else Path(args.cache_dir) if args.cache_dir else DEFAULT_CACHE
    results = evaluate(args.model, tasks=args.tasks, data=args.data, setting=args.setting, reranker=args.reranker,
                       output=args.output, cache_dir=cache_dir, name=args.name, model_options=options,
                       options=_options(args, rr_options), reporter=reporter(args))
    runs = by_run(results.summaries) or {str(results.name): []}
    for name, part in runs.items():
        seconds = (results.seconds or 0.0) if len(runs) == 1 else sum(s.seconds for s in part)
        print_summary(part, name, args.setting, seconds)
    return 0


def by_run(summaries: list) -> dict[str, list]:
    """The summaries grouped by their run's results name (one run per scope: bm25, bm25@x4...), in order."""
    out: dict[str, list] = {}
    for summary in summaries:
        out.setdefault(summary.model, []).append(summary)
    return out


def print_summary(summaries: list, name: str, setting: str, seconds: float, file: Any = None) -> None:
    """A short per-dataset table: subsets run/skipped, ndcg_at_10, R_cap_at_10, texts, seconds.

    Texts: ``encoded`` by the model, ``reused`` from this run's memory (a corpus shared by several subsets is
    encoded once), read from the ``disk`` cache (what an earlier run encoded); a fresh cache reads 0.

    Scores come from the results the run returned (nothing is read back), by the tables' one rule
    (``lmeb.report.aggregate`` via ``summary_cells``): a dataset score only when the dataset has every
    subset, else ``n/N*``; a dataset holding one subset shows that subset's own score on a ``Dataset/subset`` row.
    Under the table, a line per model that keeps counters (``stats``: an API's requests, tokens and retries,
    a reranker's pairs...), summed over the subsets run now: what the run cost.
    """
    from lmeb.engine.efficiency import add_counts
    from lmeb.report.views import SUMMARY_LEGEND, summary_cells

    file = file or sys.stdout
    head = ("dataset", "subsets", "ndcg@10", "Rcap@10", "encoded", "reused", "disk", "seconds")
    rows, partial = [], False
    for s in summaries:
        subsets = f"{s.subsets_run}/{s.subsets_total}" + (f" ({s.subsets_skipped} kept)" if s.subsets_skipped else "")
        scores, complete, subset = summary_cells(s.result)
        label = s.dataset if subset is None else f"{s.dataset}/{subset}"  # one subset asked for: its own score
        partial |= not complete and subset is None
        rows.append((label, subsets, *scores, str(s.texts.encoded), str(s.texts.memory), str(s.texts.disk),
                     f"{s.seconds:.1f}"))
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    print(f"{name} ({setting})", file=file)
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))),
              file=file)
    warnings = sum(len(s.warnings) for s in summaries)
    encoded = sum(s.texts.encoded for s in summaries)
    reused = sum(s.texts.memory for s in summaries)
    disk = sum(s.texts.disk for s in summaries)
    out_dirs = {str(s.path.parent) for s in summaries if s.path is not None}
    print(f"{counted(len(summaries), 'dataset')} in {seconds:.1f}s; {counted(encoded, 'text')} encoded, {reused:,} "
          f"reused in memory, {disk:,} from the disk cache"
          + (f"; {counted(warnings, 'warning')}" if warnings else "")
          + (f"; results in {', '.join(sorted(out_dirs))}" if out_dirs else ""), file=file)
    for role, counts in add_counts(*(s.model_counts for s in summaries)).items():
        print(counts_line(role, counts), file=file)
    if partial:
        print(SUMMARY_LEGEND, file=file)


def counts_line(role: str, counts: dict[str, int]) -> str:
    """``model counts: requests 412, tokens 1,234,567, retries 3`` (counters named as the model keeps them)."""
    return f"{role} counts: " + ", ".join(f"{key.replace('_', ' ')} {n:,}" for key, n in counts.items())
