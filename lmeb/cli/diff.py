"""Cell-by-cell deltas (run - paper) between a model's results and a model of the paper's Table 2/3.

Compares the paper-view cells both have (N@10 and R@10 per memory type, Mean (Dataset), Mean (Type)),
in percentage points; a run cell of an incomplete group shows ``n/N*`` (parts complete) and no delta.
"""

from __future__ import annotations

import argparse
import sys

from lmeb.report.aggregate import as_results
from lmeb.report.paper import PaperDiff, paper_diff
from lmeb.tasks.settings import SETTINGS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_model", metavar="RUN_MODEL", help="model name in the results (full or short)")
    parser.add_argument("paper_model", metavar="PAPER_MODEL",
                        help="model name as in the paper, e.g. Qwen3-Embedding-0.6B (or its preset name or hub id)")
    parser.add_argument("results", nargs="*", default=["results"], metavar="RESULTS",
                        help="results directories (default: results)")
    parser.add_argument("--setting", choices=SETTINGS, default="wo_inst",
                        help="wo_inst = Table 2, w_inst = Table 3 (default: wo_inst)")
    parser.add_argument("--format", choices=("text", "csv", "json"), default="text",
                        help="output format (default: text)")


def format_diff(diff: PaperDiff, fmt: str = "text") -> str:
    """The deltas as aligned text, CSV or JSON (the cells; the text's heading names what was compared)."""
    frame = diff.frame
    if fmt == "csv":
        from lmeb.safety import csv_cell

        return frame.map(csv_cell).to_csv(index=False, float_format="%.4f")  # no formula runs (OWASP)
    if fmt == "json":
        return frame.to_json(orient="records", indent=2, double_precision=6) + "\n"
    lines = [f"{diff.model} ({diff.setting}) - paper {diff.paper_model}, percentage points"]
    if "synthetic" in diff.data_source:  # lmeb.results.identity: the deltas say nothing about the model
        lines[0] = f"§ {lines[0]}; synthetic data (lmeb sample), not LMEB: the deltas say nothing about the model"
    if "candidates missing" in diff.data_source:
        lines.append("‡ candidates missing: a dataset ran without its candidates file (not the published task)")
    if diff.missing:  # say why up front: cells of incomplete groups have no mean and no delta
        lines.append(f"incomplete run: {diff.missing}; its types and means without all their datasets show "
                     "n/N* and no delta")
    lines.append(f"{'cell':<22}{'run':>9}{'paper':>9}{'delta':>9}")
    for r in frame.itertuples(index=False):
        run, delta = (f"{r.run:.2f}", f"{r.delta:+.2f}") if r.complete else (f"{r.parts}*", "-")
        lines.append(f"{r.group + ' ' + r.metric:<22}{run:>9}{r.paper:>9.2f}{delta:>9}")
    if not frame["complete"].all():
        lines.append("n/N* = incomplete run cell: only n of N parts complete, no mean computed")
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> int:
    diff = paper_diff(as_results(args.results), args.run_model, args.paper_model, args.setting)
    sys.stdout.write(format_diff(diff, args.format))
    return 0
