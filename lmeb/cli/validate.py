"""Check LMEB data files in the official layout: errors fail (exit 1), warnings are counted.

Every problem is one line ``path:line: message``; datasets absent under the data root are skipped
unless named in ``--tasks``. Only the first 5 warnings of each kind are printed per dataset;
``--all-warnings`` prints every one (``--all`` selects all datasets, as everywhere).
"""

from __future__ import annotations

import argparse
import time

from lmeb.cli.options import add_selection

WARNINGS_SHOWN = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="DIR", help="data root (default $LMEB_DATA)")
    add_selection(parser)
    parser.add_argument("--all-warnings", action="store_true",
                        help=f"print every warning, not the first {WARNINGS_SHOWN} of each kind per dataset")
    parser.add_argument("--allow-missing-candidates", action="store_true",
                        help="a dataset whose rule has candidates but lacks its candidates file is a warning, "
                             "not an error")


def main(args: argparse.Namespace) -> int:
    from lmeb.data.validate import format_report, validate

    start = time.perf_counter()
    report = validate(args.data, args.tasks, args.type, args.allow_missing_candidates)
    lines = format_report(report, max_per_kind=None if args.all_warnings else WARNINGS_SHOWN)
    for line in lines:
        print(line)
    if args.all and not args.all_warnings and any("--all-warnings shows them" in line for line in lines):
        print("note: --all selects all datasets; --all-warnings prints every warning")
    print(f"checked in {time.perf_counter() - start:.1f} s: {'OK' if report.ok else 'FAILED'}")
    return 0 if report.ok else 1
