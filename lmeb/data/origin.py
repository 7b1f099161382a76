"""Which download a data root's files came from: the manifest ``lmeb download`` keeps in the data root.

``<data root>/.lmeb_download.json`` holds, per dataset and source (``official/LoCoMo``, ``mteb/LoCoMo``): the
repository, the revision asked for, the commit it resolved to, and the sha256 of every file fetched (paths
relative to the data root). A run looks the files a subset read up in it (``data_origin``): when a download
of that dataset recorded every one with the same sha256, the subset's provenance carries that origin, so
the results (and ``lmeb export-mteb``, see ``lmeb.report.official``) know which release they were computed from;
a file edited since, or data lmeb did not download, gives no origin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmeb.files import atomic_write_json
from lmeb.json_read import read_json_or
from lmeb.tasks.registry import Task

MANIFEST = ".lmeb_download.json"


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The manifest of a data root (``{"datasets": {"<source>/<dataset>": entry}}``); empty when there is none
    or it is damaged."""
    obj = read_json_or(Path(root) / MANIFEST)  # damaged (bad UTF-8, bad JSON, nested too deep): no manifest
    return obj if isinstance(obj, dict) and isinstance(obj.get("datasets"), dict) else {"datasets": {}}


def write_entry(root: Path, entry: dict[str, Any]) -> None:
    """Set (atomically) one download's entry (``dataset``, ``source``...) in the manifest of the data root."""
    manifest = read_manifest(root)
    manifest["datasets"][f"{entry['source']}/{entry['dataset']}"] = entry
    atomic_write_json(Path(root) / MANIFEST, manifest)


def data_origin(root: str | Path, task: Task, files: dict[str, str],
                manifest: dict[str, Any] | None = None) -> dict[str, str] | None:
    """Where the files a subset read came from: the manifest's source, repository, revision and commit,
    when every file is one a download of ``task`` recorded with the same sha256; else None (not
    downloaded by lmeb, or changed since). ``manifest``: the root's, when the caller has read it already."""
    root = Path(root)
    if not files:
        return None
    try:
        wanted = {Path(p).resolve().relative_to(root.resolve()).as_posix(): sha for p, sha in files.items()}
    except ValueError:  # a file outside the data root: not a download's
        return None
    for entry in (manifest or read_manifest(root))["datasets"].values():
        recorded = entry.get("files") if isinstance(entry, dict) and entry.get("dataset") == task.name else None
        if isinstance(recorded, dict) and all(recorded.get(rel) == sha for rel, sha in wanted.items()):
            return {k: str(entry.get(k, "")) for k in ("source", "repo", "revision", "commit")}
    return None
