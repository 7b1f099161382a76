"""Check LMEB data files in the official layout: errors fail (exit 1), warnings are counted.

Every problem is one line ``path:line: message``; datasets absent under the data root are skipped.
"""

from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="DIR", help="data root (default $LMEB_DATA)")
    parser.add_argument("--tasks", metavar="A,B/sub", help="datasets or Dataset/subset, comma-separated (default all)")
    parser.add_argument("--type", action="append", metavar="T", help="memory type (repeatable)")
    parser.add_argument("--all", action="store_true", help="print every warning, not the first 5 of each kind")


def main(args: argparse.Namespace) -> int:
    from lmeb.validate import format_report, validate

    start = time.perf_counter()
    report = validate(args.data, args.tasks, args.type)
    for line in format_report(report, max_per_kind=None if args.all else 5):
        print(line)
    print(f"checked in {time.perf_counter() - start:.1f} s: {'OK' if report.ok else 'FAILED'}")
    return 0 if report.ok else 1
