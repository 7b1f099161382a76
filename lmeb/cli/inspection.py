"""See why a score is what it is: one subset's queries with their texts, judgements and rankings.

Examples:
  lmeb inspect results --model bm25 --tasks LoCoMo/temporal_reasoning --worst 5 --data DATA
  lmeb inspect results --model bm25 --tasks LoCoMo/single_hop --query locomo_conv-26_q3 --data DATA
  lmeb inspect results --model bm25 --versus minilm --tasks Gorilla/gorilla_tensor --worst 10 --data DATA
  lmeb inspect results --model bm25 --tasks LoCoMo/multi_hop --format html --out worst.html --data DATA

Per query: its text and the instruction used, its metric values, every relevant document (grade,
excerpt, the rank the model gave it; '-' = below the kept top 100) and the top --k retrieved (rank,
score, relevant or not, id, excerpt). --worst N shows the N lowest ndcg_at_10 of the per-query file
(ties by query id; the default is 10); --query ID shows those; --versus OTHER shows the queries where
the two models differ most, both rankings side by side. The rankings come from the sidecar every run
writes (<Dataset>.rankings/<subset>.npz, the top 100 per query); a missing or damaged one is a note.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lmeb.errors import LmebError
from lmeb.tasks.settings import SETTINGS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", metavar="RESULTS", help="results directories")
    parser.add_argument("--model", required=True, help="the model's name in the results")
    parser.add_argument("--setting", choices=SETTINGS, help="setting (default: the only one, else wo_inst)")
    parser.add_argument("--tasks", required=True, metavar="DATASET/SUBSET",
                        help="the subset to inspect (the dataset alone with --evidence-distance)")
    pick = parser.add_mutually_exclusive_group()
    pick.add_argument("--worst", type=int, metavar="N", help="the N lowest ndcg_at_10 (default 10)")
    pick.add_argument("--query", nargs="+", action="extend", metavar="ID", help="these query ids")
    parser.add_argument("--versus", metavar="OTHER", help="a second model: the queries where they differ most")
    parser.add_argument("--k", type=int, default=10, help="retrieved documents shown per query (default 10)")
    parser.add_argument("--data", metavar="DIR", help="data root in the official layout (default $LMEB_DATA)")
    # lmeb.inspect.render.FORMATS, spelled out: importing it would load numpy for every lmeb command's parser
    parser.add_argument("--format", choices=("text", "json", "html"), default="text",
                        help="text (default), json, or html: one self-contained escaped page")
    parser.add_argument("--evidence-distance", action="store_true", help="instead: the main score by quartile of "
                        "how far back the relevant turns lie (datasets with a conversation order only: LoCoMo)")
    parser.add_argument("--out", metavar="FILE", help="write there (atomically) instead of stdout")


def main(args: argparse.Namespace) -> int:
    from lmeb.files import atomic_write_text
    from lmeb.inspect.queries import inspect_subset
    from lmeb.inspect.render import render
    from lmeb.results.dataset_result import read_results

    if args.query and args.versus:
        raise LmebError("--versus picks its own queries: give --worst N (how many), not --query")
    results = read_results(args.results, per_query=True)
    if args.evidence_distance:
        from lmeb.inspect.evidence import evidence_distance
        from lmeb.inspect.queries import find_result

        frame = evidence_distance(find_result(results, args.model, args.tasks.split("/")[0], args.setting), args.data)
        sys.stdout.write(frame.to_string(index=False, float_format=lambda v: f"{v:.2f}") + "\n")
        return 0
    view = inspect_subset(results, args.model, args.tasks, setting=args.setting, worst=args.worst,
                          queries=args.query, versus=args.versus, k=args.k, data=args.data)
    text = render(view, args.format)
    if args.out:
        atomic_write_text(Path(args.out), text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
