"""Write LMEB data in mteb's HF-datasets format from the official layout, or the official layout from it.

Examples:
  lmeb convert --to mteb DATA OUT --tasks ReMe        # OUT/ReMe/: README card + parquet configs
  lmeb convert --to official OUT DATA2                # back: DATA2/<Type>/<Dataset>/ from OUT/<Name>/

--to mteb writes OUT/<Name>/ per dataset (Name = mteb's repository name: ReMe, Proced_mem_bench, LMEBMLDR),
with the configs <subset>-corpus, -queries, -qrels and -top_ranked (split test) declared in its README card,
so datasets.load_dataset("OUT/ReMe", "<subset>-corpus", split="test") and mteb's RetrievalDatasetLoader read
it, and so can lmeb (--data OUT). --to official reads such copies (lmeb's or mteb's) under DATA and writes
the official layout. Every id, text, qrels score and candidate list is kept: a model scores the same on both.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lmeb.cli.options import add_selection, selection


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True, choices=("mteb", "official"), help="the layout to write")
    parser.add_argument("data", metavar="DATA", help="data root holding the datasets to convert")
    parser.add_argument("out", metavar="OUT", help="output folder (created)")
    add_selection(parser, all_help="every LMEB dataset present under DATA (the default)")


def main(args: argparse.Namespace) -> int:
    from lmeb.data.mteb_convert import convert
    from lmeb.data.reader import available_tasks, data_root, present_selections

    root = data_root(args.data)
    todo = [(s.task, s.subsets) for s in present_selections(root, selection(args), bool(args.tasks),
                                                             find=available_tasks)]
    for folder in convert(args.to, root, Path(args.out), todo):
        print(folder)
    return 0
