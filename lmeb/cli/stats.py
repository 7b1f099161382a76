"""Per-subset statistics of LMEB data in mteb's shape; ``--compare`` checks them against the published ones.

Only datasets present under the data root are computed; ``--json`` prints ``{dataset: stats}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from lmeb.cli.options import add_selection, selection


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="DIR", help="data root (default $LMEB_DATA)")
    add_selection(parser, all_help="all LMEB datasets present under --data (the default)")
    parser.add_argument("--compare", action="store_true", help="published vs computed, subset by subset")
    parser.add_argument("--json", action="store_true", help="print the computed statistics as JSON")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "null" if value is None else str(value)


def main(args: argparse.Namespace) -> int:
    from lmeb.data.reader import data_root, present_selections
    from lmeb.data.stats import compare_stats, compute, text_count

    root = data_root(args.data)
    selections = selection(args)
    selections = present_selections(root, selections, bool(args.tasks))
    start = time.perf_counter()
    computed = compute(selections, root)
    elapsed = time.perf_counter() - start
    if args.json:
        json.dump(computed, sys.stdout, indent=2)
        print()
        return 0
    if not args.compare:
        print(f"{'dataset/subset':<48} {'queries':>8} {'docs':>8} {'rel/q':>7} {'cand/q':>8}")
        for name, stats in computed.items():
            for sub, s in stats["test"]["hf_subset_descriptive_stats"].items():
                rel = s["relevant_docs_statistics"]
                top = s["top_ranked_statistics"]
                n_docs = text_count(s["documents_text_statistics"])
                n_queries = s["num_samples"] - n_docs
                print(
                    f"{name + '/' + sub:<48} {n_queries:>8} {n_docs:>8} "
                    f"{_fmt(rel['average_relevant_docs_per_query']):>7} "
                    f"{_fmt(top['average_top_ranked_per_query']) if top else '-':>8}"
                )
        print(f"computed in {elapsed:.1f} s")
        return 0
    total = matching = 0
    for name, stats in computed.items():
        comparison = compare_stats(next(s.task for s in selections if s.task.name == name), stats)
        for sub, diffs in comparison.subsets.items():
            total += 1
            if not diffs:
                matching += 1
                print(f"{name}/{sub}: ==  all statistics match")
                continue
            print(f"{name}/{sub}: !=  {len(diffs)} statistics differ")
            for d in diffs:
                print(f"    {d.key:<58} published {_fmt(d.published):>14}  !=  computed {_fmt(d.computed)}")
        if comparison.dataset is not None:
            mark = "==  matches" if not comparison.dataset else f"!=  {len(comparison.dataset)} statistics differ"
            print(f"{name} (all subsets together): {mark}")
    print(f"{matching}/{total} subsets match the published statistics (computed in {elapsed:.1f} s)")
    return 0

