"""Write a small synthetic dataset tree in the official LMEB layout (all 22 datasets, 193 subsets).

For tests, demos and ``make run`` on machines without the real data; every id is marked ``synthetic``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="folder to write (created; sample files in it are overwritten)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0); same seed, same files")
    parser.add_argument("--size", choices=("small", "medium"), default="small",
                        help="small (default): 3-6 queries per subset, a whole tree in well under a second; "
                             "medium: 4 times the queries (and their documents), for timing and demos")


def main(args: argparse.Namespace) -> int:
    from lmeb.data.sample import write_sample

    out = write_sample(args.out, seed=args.seed, size=args.size)
    print(f"wrote a synthetic LMEB sample to {out} (see {out / 'SYNTHETIC.md'}); use it with --data {out}")
    return 0
