"""Paired per-query comparison of two models: per dataset the mean delta (A - B), a sign-flip randomization
p-value and 95% bootstrap confidence intervals, and wins/ties/losses over subsets.

Reads the ``.per_query.json`` sidecars; queries are aligned by id; a dataset weighs its subsets equally
(like its score). Deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
import sys

from lmeb.compare import compare, format_comparison
from lmeb.results import SETTINGS, load_results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_a", metavar="A", help="model name in the results (full or short)")
    parser.add_argument("model_b", metavar="B", help="model to compare against")
    parser.add_argument("--results", nargs="+", default=["results"], metavar="DIR",
                        help="results directories (default: results)")
    parser.add_argument("--metric", default="ndcg_at_10", help="per-query metric (default: ndcg_at_10)")
    parser.add_argument("--setting", choices=SETTINGS, help="needed when both models have both settings")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--resamples", type=int, default=10_000,
                        help="bootstrap resamples and random sign flips (default: 10000)")
    parser.add_argument("--subsets", action="store_true", help="also print a row per subset")
    parser.add_argument("--format", choices=("text", "csv", "json"), default="text")


def main(args: argparse.Namespace) -> int:
    c = compare(load_results(args.results, per_query=True), args.model_a, args.model_b, metric=args.metric,
                setting=args.setting, seed=args.seed, resamples=args.resamples)
    sys.stdout.write(format_comparison(c, args.format, show_subsets=args.subsets))
    return 0
