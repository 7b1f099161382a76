"""Was a result computed from the official LMEB release? What a results file records of its data, held
against what lmeb knows of the release.

A results file records the data it read: a fingerprint (sha256 over the files' sha256) and, per subset,
the files' sha256 and the numbers of queries and documents. lmeb ships no sha256 of the official files,
only the statistics mteb publishes for each subset (``lmeb/spec/published_stats``), so:

* ``differs``: a subset's query or document count is not the published one (e.g. a rebuilt superset):
  certainly not the official data;
* ``unverified``: the counts match (or none are published), but nothing proves the files are the official
  ones;
* ``synthetic``: lmeb's synthetic sample (``lmeb.results.identity``), never official whatever is asserted;
* ``official``: the user asserted it (``lmeb export-mteb --official-data``), or every subset's files are,
  byte for byte, those ``lmeb download --source mteb`` fetched at the revision mteb pins (the recorded
  ``data_origin``); and no count contradicts it. An origin naming another revision of mteb's copy
  contradicts an assertion.

``lmeb export-mteb`` stamps mteb's official dataset revision only on ``official`` results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lmeb.data.stats import published_stats, text_count
from lmeb.errors import LmebError
from lmeb.results.dataset_result import DatasetResult
from lmeb.results.identity import PUBLISHED, SYNTHETIC, data_source, task_scope
from lmeb.tasks.registry import get_task

OFFICIAL, UNVERIFIED, DIFFERS = "official", "unverified", "differs"
# SYNTHETIC (lmeb.results.identity): lmeb's sample, not LMEB at all, whatever the counts say


@dataclass(frozen=True)
class DataCheck:
    """One dataset result's data: its status, the recorded fingerprint(s) and why it is not official."""

    status: str
    fingerprint: str | None
    subset_fingerprints: dict[str, str | None] = field(default_factory=dict)  # mteb subset name -> fingerprint
    differences: tuple[str, ...] = ()
    origin: dict[str, str] | None = None  # where every subset's files were downloaded from, when they agree
    task_scope: str = PUBLISHED  # "candidates missing": ran without its candidates file (results.identity)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "data_fingerprint": self.fingerprint,
                "subset_fingerprints": dict(self.subset_fingerprints), "differences": list(self.differences),
                "data_origin": self.origin, "task_scope": self.task_scope}


def published_counts(task_name: str) -> dict[str, dict[str, int | None]]:
    """Per subset (lmeb spelling) the published numbers of queries and documents; {} when none are shipped."""
    task = get_task(task_name)
    stats = published_stats(task) or {}
    per_subset = (stats.get("test") or {}).get("hf_subset_descriptive_stats") or {}
    by_mteb = {s.mteb_name: s.name for s in task.subsets}
    return {by_mteb.get(name, name): {"queries": text_count(s.get("queries_text_statistics")) or None,
                                      "documents": text_count(s.get("documents_text_statistics")) or None}
            for name, s in per_subset.items()}


def check_data(result: DatasetResult, asserted_official: bool = False) -> DataCheck:
    """The data status of ``result`` (see the module docstring); counts a subset did not record are skipped."""
    task = get_task(result.task_name)
    published = published_counts(task.name)
    differences = []
    for name, sub in result.subsets.items():
        for what in ("queries", "documents"):
            ours, theirs = sub.provenance.get(what), published.get(name, {}).get(what)
            if isinstance(ours, int) and theirs is not None and ours != theirs:
                differences.append(f"{task.name}/{name}: {ours} {what}, the official release has {theirs}")
    origin = common_origin(result)
    is_release = bool(origin and origin.get("source") == "mteb" and origin.get("repo") == task.mteb_hf_dataset
                      and origin.get("commit") == task.mteb_revision)
    if origin and origin.get("source") == "mteb" and not is_release and asserted_official:
        differences.append(f"{task.name}: downloaded from {origin.get('repo')}@{origin.get('commit')}, not the "
                           f"official revision {task.mteb_revision}")
    status = DIFFERS if differences else OFFICIAL if asserted_official or is_release else UNVERIFIED
    if data_source(result) == SYNTHETIC:
        status = SYNTHETIC
        differences.insert(0, f"{task.name}: lmeb's synthetic sample (provenance synthetic: true), not LMEB")
    fingerprints = {task.subset(name).mteb_name: sub.provenance.get("data_fingerprint")
                    for name, sub in result.subsets.items()}
    return DataCheck(status, result.provenance.get("data_fingerprint"), fingerprints, tuple(differences), origin,
                     task_scope(result))


def common_origin(result: DatasetResult) -> dict[str, str] | None:
    """The ``data_origin`` every subset of ``result`` records (``lmeb.data.hub``), or None when one has none
    or they differ."""
    origins = [sub.provenance.get("data_origin") for sub in result.subsets.values()]
    first = origins[0] if origins else None
    return first if isinstance(first, dict) and all(o == first for o in origins) else None


def require_official(checks: list[DataCheck]) -> None:
    """The error for ``--official-data`` when the recorded counts contradict it."""
    differing = [d for c in checks for d in c.differences]
    if differing:
        more = f" (and {len(differing) - 3} more)" if len(differing) > 3 else ""
        raise LmebError(f"--official-data, but the results were not computed from the official data: "
                        f"{'; '.join(differing[:3])}{more}")
