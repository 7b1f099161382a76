"""Fetch LMEB datasets from the Hugging Face hub: only the selected ones, at a pinned revision, checked.

Examples:
  lmeb download --tasks LoCoMo                      # into $LMEB_DATA or ~/.cache/lmeb/data
  lmeb download --type Procedural --to ~/lmeb-data
  lmeb download --tasks ReMe --source mteb          # mteb's copy (mteb/ReMe at the revision mteb pins)
  lmeb download --all --revision 0123abcd...        # every dataset, at one commit of the official repository

--source official (default) is KaLM-Embedding/LMEB; --source mteb is mteb's mteb/<Name> copies, each at
the revision mteb 2.26 pins. Files land in DEST/eval_data, the data root to pass as --data (or set
LMEB_DATA=DEST). An interrupted download resumes; every file is checked against the size and hash the hub
lists, and DEST/eval_data/.lmeb_download.json records the source, revision and commit of each dataset, which
results then carry. HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE work as for any hub client; LMEB_HUB_TIMEOUT
bounds how long a request may go unanswered (default 30 s).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lmeb.cli.options import add_progress, add_selection, reporter, selection
from lmeb.errors import LmebError
from lmeb.wording import counted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_selection(parser, all_help="every LMEB dataset (22)")
    where = parser.add_argument_group("where from, where to")
    where.add_argument("--to", metavar="DIR", help="destination (default $LMEB_DATA or ~/.cache/lmeb/data); "
                       "the data root is DIR/eval_data")
    where.add_argument("--source", choices=("official", "mteb"), default="official",
                       help="official: KaLM-Embedding/LMEB (default); mteb: mteb's mteb/<Name> copies")
    where.add_argument("--revision", metavar="REV", help="a branch, tag or commit (default: the source's pinned "
                       "revision)")
    add_progress(parser)


def main(args: argparse.Namespace) -> int:
    from lmeb.data.hub import data_folder, default_destination, download, human_size

    if not (args.tasks or args.type or args.all):
        raise LmebError("choose what to fetch: --tasks A,B, --type TYPE or --all")
    tasks = [s.task for s in selection(args)]
    progress = reporter(args).bars
    dest = Path(args.to).expanduser() if args.to else default_destination()
    lines: list[str] = []

    def announce(plans: list) -> None:
        size = sum(p.size for p in plans)
        print(f"lmeb download: {counted(len(plans), 'dataset')}, {human_size(size)} from {args.source} into {dest}",
              file=sys.stderr)

    download(tasks, dest, source=args.source, revision=args.revision, progress=progress, log=lines.append,
             announce=announce)
    for line in lines:
        print(line)
    print(f"data root: {data_folder(dest)} (lmeb run --data {data_folder(dest)} ...)")
    return 0
