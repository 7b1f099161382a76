"""Write the static leaderboard site (index.html, data.json, figures) from results directories.

The page opens straight from disk (file://), with no server and no network: a sortable table in the
paper's layout, memory-type and setting filters, per-dataset and per-subset drill-downs, each run's
configuration and provenance, and bar and slope charts.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lmeb.leaderboard.site import DEFAULT_TITLE, PAPER_CHOICES
from lmeb.wording import counted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="*", type=Path, default=None,
                        help="results directories (default: results); each holds <model>/<setting>/<Dataset>.json")
    parser.add_argument("--out", type=Path, default=Path("leaderboard/site"),
                        help="site folder to write (default leaderboard/site); replaced atomically")
    parser.add_argument("--with-paper", choices=PAPER_CHOICES, default=None,
                        help="add the published rows of the LMEB paper (Table 2 wo_inst, Table 3 w_inst, or both)")
    parser.add_argument("--title", default=DEFAULT_TITLE, help=f"page title (default {DEFAULT_TITLE!r})")
    parser.add_argument("--no-figures", action="store_true", help="skip the matplotlib figures (faster)")


def main(args: argparse.Namespace) -> int:
    from lmeb.leaderboard.site import write_site

    start = time.perf_counter()
    dirs = args.results or ([Path("results")] if Path("results").is_dir() or not args.with_paper else [])
    site = write_site(dirs, args.out, with_paper=args.with_paper, title=args.title, figures=not args.no_figures)
    print(f"wrote {site.index} ({counted(site.rows, 'row')}, {counted(len(site.figures), 'figure')}) in "
          f"{time.perf_counter() - start:.1f} s; "
          f"open file://{site.index.resolve()}")
    for run, missing in site.missing.items():  # incomplete runs: no mean over an incomplete group
        print(f"incomplete: {run}: {missing}")
    return 0
