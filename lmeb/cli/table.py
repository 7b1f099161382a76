"""Tables from results files, one view each: paper (the paper's layout), datasets (a column per dataset),
subsets (a column per subset of one dataset), instructions (the effect w_inst - wo_inst of every model with
both settings), efficiency and efficiency-datasets (what each run cost: texts, tokens, seconds, rates, peak
memory, per run or per run and dataset), growth (the main score per dataset at each scope a model ran:
its pool, pools grown with distractors, the whole corpus).

Cells are percent with 2 decimals. An incomplete group (a dataset missing subsets, a type or mean
missing a complete part) gets no mean: its cell shows ``n/N*``, n of N parts complete. The ``Complete``
column, shown when a row is incomplete, counts its complete datasets (subsets in the subsets view).
The datasets view hides dataset columns no row has (--all-columns shows them). A model whose results
say it ignores instructions (BM25) is marked beside its w_inst setting.
In md and LaTeX the best cell per column is bold and the second underlined, over the numbers.
"""

from __future__ import annotations

import argparse
import sys

from lmeb.errors import LmebError
from lmeb.report.render import FORMATS, render
from lmeb.report.views import VIEWS, build_table
from lmeb.tasks.settings import SETTINGS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="*", default=["results"], metavar="RESULTS",
                        help="results directories (default: results)")
    parser.add_argument("--view", choices=VIEWS, default="paper",
                        help="paper: Table 2/3 layout; datasets: a column per dataset; subsets: one dataset; "
                             "instructions: w_inst - wo_inst of every model with both settings; efficiency: "
                             "texts, tokens, seconds, rates, peak memory per run (efficiency-datasets: per dataset)")
    parser.add_argument("--dataset", help="the dataset of --view subsets (or of --view efficiency)")
    parser.add_argument("--metric", help="metric of views datasets/subsets (mteb name; default ndcg_at_10)")
    parser.add_argument("--setting", choices=SETTINGS, help="only this setting (default: all found)")
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    parser.add_argument("--with-paper", choices=SETTINGS, help="add the paper's published rows of this setting "
                        "(view instructions: the paper's Table 3 - Table 2, either value)")
    parser.add_argument("--all-columns", action="store_true",
                        help="view datasets: also the dataset columns no row has (hidden by default)")


def main(args: argparse.Namespace) -> int:
    if args.metric is not None and args.view in ("paper", "instructions"):
        raise LmebError(f"--metric applies to views datasets and subsets; the {args.view} view shows N@10 and R@10")
    if args.all_columns and args.view != "datasets":
        raise LmebError("--all-columns goes with --view datasets")
    t = build_table(args.results, view=args.view, metric=args.metric or "ndcg_at_10", setting=args.setting,
                    dataset=args.dataset, with_paper=args.with_paper, all_columns=args.all_columns)
    sys.stdout.write(render(t, args.format))
    return 0
