"""Tables from results files: the paper's layout, a column per dataset, or a column per subset of one dataset.

Cells are percent with 2 decimals. An incomplete group (a dataset missing subsets, a type or mean
missing a complete part) gets no mean: its cell shows ``n/N*``, n of N parts complete. The ``Complete``
column, shown when a row is incomplete, counts its complete datasets (subsets in the subsets view).
In md and LaTeX the best cell per column is bold and the second underlined, over the numbers.
"""

from __future__ import annotations

import argparse
import sys

from lmeb.report import FORMATS, VIEWS, render, table
from lmeb.results import SETTINGS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="*", default=["results"], metavar="RESULTS",
                        help="results directories (default: results)")
    parser.add_argument("--view", choices=VIEWS, default="paper",
                        help="paper: Table 2/3 layout; datasets: a column per dataset; subsets: one dataset")
    parser.add_argument("--dataset", help="the dataset of --view subsets")
    parser.add_argument("--metric", default="ndcg_at_10", help="metric of views datasets/subsets (mteb name)")
    parser.add_argument("--setting", choices=SETTINGS, help="only this setting (default: all found)")
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    parser.add_argument("--with-paper", choices=SETTINGS, help="add the paper's published rows of this setting")


def main(args: argparse.Namespace) -> int:
    df = table(args.results, view=args.view, metric=args.metric, setting=args.setting, dataset=args.dataset,
               with_paper=args.with_paper)
    sys.stdout.write(render(df, args.format))
    return 0
