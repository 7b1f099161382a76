"""Write results in the mteb results-repository layout: ``<org>__<model>/<revision>/<MtebTaskName>.json``.

mteb's TaskResult JSON with mteb's task and subset names (e.g. LMEBMLDR, ProceduralMemBench, EPBench
``scenario__query_type``) and a ``model_meta.json`` per model folder; files are written atomically.

mteb's official dataset revision is stamped only with --official-data (you assert the results come from
the official KaLM-Embedding/LMEB files; refused when their recorded query/document counts differ from
the published ones). Otherwise dataset_revision is lmeb-unverified-data-<fingerprint> (or
lmeb-differs-data-<fingerprint> for data that is certainly not official), and each file's lmeb_data
object records the data fingerprints.
"""

from __future__ import annotations

import argparse
import sys

from lmeb.report.export import export_mteb, incomplete_datasets
from lmeb.report.official import DIFFERS, UNVERIFIED, check_data
from lmeb.results.dataset_result import read_results
from lmeb.tasks.settings import SETTINGS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", metavar="RESULTS", help="results directory written by lmeb run")
    parser.add_argument("out", metavar="OUT", help="output folder (e.g. the results/ of a results-repo checkout)")
    parser.add_argument("--revision", help="model revision folder (default: the recorded hub revision, "
                                           "else no_revision_available)")
    parser.add_argument("--org", help="organisation for model names without one (my-model -> ORG__my-model)")
    parser.add_argument("--setting", choices=SETTINGS, help="the setting to export when a model has both")
    parser.add_argument("--allow-incomplete", action="store_true",
                        help="export datasets missing some subsets too (warned; refused by default)")
    parser.add_argument("--official-data", action="store_true",
                        help="the results come from the official LMEB files: stamp mteb's dataset revision "
                             "(default: lmeb-unverified-data-<fingerprint>)")
    parser.add_argument("--allow-synthetic", action="store_true",
                        help="export results on lmeb's synthetic sample too (refused by default; marked synthetic)")


def main(args: argparse.Namespace) -> int:
    results = read_results([args.results])
    written = export_mteb(results, args.out, revision=args.revision, org=args.org, setting=args.setting,
                          allow_incomplete=args.allow_incomplete, official_data=args.official_data,
                          allow_synthetic=args.allow_synthetic)
    exported = [r for r in results if args.setting in (None, r.setting)]
    for line in incomplete_datasets(exported):
        print(f"lmeb export-mteb: warning: exported an incomplete dataset: {line}", file=sys.stderr)
    checks = [(r, check_data(r, args.official_data)) for r in exported]
    for r, check in checks:
        if check.status == DIFFERS:
            print(f"lmeb export-mteb: warning: {r.model} ({r.setting}) {r.task_name}: not the official data "
                  f"({check.differences[0]}{'; ...' if len(check.differences) > 1 else ''})", file=sys.stderr)
    unverified = sum(check.status == UNVERIFIED for _, check in checks)
    if unverified:
        print(f"lmeb export-mteb: note: {unverified} dataset result(s) from data lmeb cannot verify as the official "
              "release: dataset_revision lmeb-unverified-data-<fingerprint>; pass --official-data if it is the "
              "official KaLM-Embedding/LMEB download", file=sys.stderr)
    tasks = sum(p.name != "model_meta.json" for p in written)
    print(f"wrote {tasks} task results and {len(written) - tasks} model_meta.json under {args.out}")
    return 0
