"""See, check and repair the on-disk embedding cache.

  lmeb cache info      one line per namespace (model, kind, instruction): shards, rows, dim, size
  lmeb cache verify    check every shard against its checksum and for NaN; exit 1 if any is damaged
  lmeb cache prune     delete damaged shards, half-written shards and temporary files of stopped runs,
                       and add complete shards a stopped run did not index (a rerun encodes the rest)

The cache is --cache-dir, else $LMEB_CACHE, else ~/.cache/lmeb. A run checks and repairs each namespace
it opens by itself; these commands do it for the whole cache at once.
"""

from __future__ import annotations

import argparse

ACTIONS = ("info", "verify", "prune")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("action", choices=ACTIONS, help="info, verify or prune")
    parser.add_argument("--cache-dir", metavar="DIR", help="the cache (default $LMEB_CACHE or ~/.cache/lmeb)")


def _describe(meta: dict) -> str:
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}  # a hand-edited index: any type
    model = str(config.get("model") or config.get("class") or "?")
    instruction = meta.get("instruction") if isinstance(meta.get("instruction"), str) else None
    text = f"{model} {meta.get('kind', '?')}"
    from lmeb.models.fingerprint import is_verified

    if not is_verified(config):  # written with the older weights fingerprint: runs no longer use it
        text += " (unverified: older weights fingerprint)"
    if instruction:
        short = instruction if len(instruction) <= 40 else instruction[:37] + "..."
        text += f" [{short}]"
    return text


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lmeb.cache import default_cache_dir
    from lmeb.embeddings.cache_info import scan_cache, stale_temporaries
    from lmeb.errors import LmebError

    root = Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()
    if root.exists() and not root.is_dir():
        raise LmebError(f"{root}: the cache path is a file, not a folder")
    temporaries = stale_temporaries(root)
    scans = scan_cache(root, fix=args.action == "prune")
    if args.action == "info":
        for scan in scans:
            dim = scan.shards[0].vectors.shape[1] if scan.shards else 0
            print(f"{scan.namespace[:12]}  {_describe(scan.meta)}: {len(scan.shards)} shards, {scan.rows} rows, "
                  f"dim {dim}, {scan.bytes / 2**20:.1f} MiB" + (f", {len(scan.problems)} damaged" if scan.problems
                                                                 else ""))
    for scan in scans if args.action != "info" else []:
        for line in scan.problems:
            print(("deleted: " if args.action == "prune" else "damaged: ") + line)
        for line in scan.actions:
            print(("" if args.action == "prune" else "to repair: ") + line)
    if args.action == "prune":
        for path in temporaries:
            print(f"{path}: temporary file of a stopped run, deleted")
    problems = sum(len(s.problems) for s in scans)
    total = sum(s.bytes for s in scans)
    print(f"{root}: {len(scans)} namespaces, {sum(s.rows for s in scans)} rows, {total / 2**20:.1f} MiB; "
          f"{problems} damaged shards, {len(temporaries)} stale temporary files"
          + ("" if args.action != "verify" or not (problems or temporaries) else " (lmeb cache prune repairs them)"))
    return 1 if args.action == "verify" and problems else 0
