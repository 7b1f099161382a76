"""Paired per-query comparison of two models, or of one model's two settings: per dataset, memory type and
mean, the mean delta (A - B), a sign-flip randomization p-value and 95% bootstrap confidence intervals, and
wins/ties/losses over subsets.

Examples:
  lmeb compare org/model-a model-b results/ --setting wo_inst
  lmeb compare my-model@w_inst my-model@wo_inst results/      # the effect of instructions

Reads the ``.per_query.json`` sidecars; queries are aligned by id; a dataset weighs its subsets equally
(like its score). A group compared on only some of its parts shows n/N* (no mean over an incomplete
group, as in lmeb table). Values in percent in every format. Deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
import sys

from lmeb.compare.paired import compare
from lmeb.compare.table import COMPARE_FORMATS, format_comparison
from lmeb.results.dataset_result import read_results
from lmeb.tasks.settings import SETTINGS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_a", metavar="A", help="model name in the results (full or short), "
                        "optionally MODEL@w_inst or MODEL@wo_inst")
    parser.add_argument("model_b", metavar="B", help="model (or MODEL@SETTING) to compare against")
    parser.add_argument("results", nargs="*", metavar="RESULTS", help="results directories (default: results)")
    parser.add_argument("--results", dest="results_option", nargs="+", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--metric", default="ndcg_at_10", help="per-query metric (default: ndcg_at_10)")
    parser.add_argument("--setting", choices=SETTINGS,
                        help="the setting of both sides, needed when both models have both settings")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--resamples", type=int, default=10_000,
                        help="bootstrap resamples and random sign flips (default: 10000)")
    parser.add_argument("--subsets", action="store_true", help="also print a row per subset")
    parser.add_argument("--format", choices=COMPARE_FORMATS, default="text",
                        help="output format, percent in all (default: text)")


def main(args: argparse.Namespace) -> int:
    dirs = list(args.results)
    if args.results_option:  # the old spelling, kept working
        print("lmeb compare: --results is deprecated; give the results folders as positional arguments",
              file=sys.stderr)
        dirs += args.results_option
    c = compare(read_results(dirs or ["results"], per_query=True), args.model_a, args.model_b, metric=args.metric,
                setting=args.setting, seed=args.seed, resamples=args.resamples)
    sys.stdout.write(format_comparison(c, args.format, show_subsets=args.subsets))
    return 0
