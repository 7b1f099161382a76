"""What a result is: the data source and task scope of a results file, and the row rule built on them.

A result's identity is model (config + weights fingerprint) + reranker + setting (the run key,
``lmeb.results.store.run_identity``) + data source + task scope. This module holds the last two:

* **data source**: ``synthetic`` (lmeb's sample, ``provenance synthetic: true``) or ``local`` (data read
  from disk: the official release or a rebuilt/local copy; only ``lmeb export-mteb --official-data``
  asserts the official release, ``lmeb.report.official``);
* **weights**: the model's fingerprint covers every byte of its weights (``lmeb.models.fingerprint``);
  results written with the older rule are read as before and marked ``°`` unverified;
* **task scope**: ``published`` (every query ranked among its scene's candidates, as the benchmark
  defines the task) or ``candidates missing`` (a dataset whose rule has candidates was run without its
  candidates file, so its queries were ranked against the whole corpus: a different task).

**Rows never mix identities.** Every table, aggregate, ``compare``, ``diff``, the leaderboard and the
export group results by (model, setting); ``split_by_source`` gives the results of a model that come
from more than one (data source, task scope) a model name per source (``bm25 [synthetic]``,
``bm25 [local]``), so a folder with 4 real and 18 synthetic datasets shows two incomplete rows, never
one complete row averaged over both. A model with one source keeps its name (the ``§``/``‡`` marks say
what it is).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from lmeb.data.reader import SubsetData
from lmeb.errors import LmebError
from lmeb.json_read import read_json
from lmeb.models.fingerprint import is_verified
from lmeb.results.dataset_result import PER_QUERY_SUFFIX, DatasetResult

SYNTHETIC, LOCAL = "synthetic", "local"
PUBLISHED, NO_CANDIDATES = "published", "candidates missing"
SYNTHETIC_MARK = "§"
SCOPE_MARK = "‡"
UNVERIFIED_MARK = "°"
UNVERIFIED_NOTE = (f"{UNVERIFIED_MARK} unverified weights: written with lmeb's older weights fingerprint (size and "
                   "first/last MiB of each file), which can miss a change to the weights; a rerun recomputes them")
SCOPE_NOTE = (f"{SCOPE_MARK} candidates missing: some dataset ran without its candidates file, so its queries were "
              "ranked against the whole corpus, not the published task")


def data_source(result: DatasetResult) -> str:
    """``synthetic`` or ``local`` (see the module docstring)."""
    if result.provenance.get("synthetic") is True:
        return SYNTHETIC
    return SYNTHETIC if any(s.provenance.get("synthetic") is True for s in result.subsets.values()) else LOCAL


def task_scope(result: DatasetResult) -> str:
    """``candidates missing`` when some subset ran without its dataset's candidates file, else ``published``."""
    return NO_CANDIDATES if any(s.provenance.get("task_scope") == NO_CANDIDATES
                                for s in result.subsets.values()) else PUBLISHED


def source_label(result: DatasetResult) -> str:
    """The data source and, when not the published one, the task scope: ``local``, ``synthetic, candidates
    missing``..."""
    scope = task_scope(result)
    return data_source(result) + ("" if scope == PUBLISHED else f", {scope}")


def weights_verified(result: DatasetResult) -> bool:
    """False when the result's model or reranker was fingerprinted by the older rule (``lmeb.models.fingerprint``)."""
    return is_verified(result.provenance.get("model_config")) and is_verified(result.provenance.get("reranker_config"))


def source_marks(results: Iterable[DatasetResult]) -> str:
    """A run's identity marks: ``§`` synthetic data, ``‡`` a dataset run without its candidates file, ``°``
    weights fingerprinted by the older rule."""
    results = list(results)
    return ((SYNTHETIC_MARK if any(data_source(r) == SYNTHETIC for r in results) else "")
            + (SCOPE_MARK if any(task_scope(r) == NO_CANDIDATES for r in results) else "")
            + (UNVERIFIED_MARK if not all(weights_verified(r) for r in results) else ""))


def split_by_source(results: Iterable[DatasetResult]) -> list[DatasetResult]:
    """The results with ``model`` renamed ``MODEL [source]`` for every model whose results have more than one
    source label (copies; the others are returned as they are). Idempotent."""
    results = list(results)
    labels: dict[str, set[str]] = {}
    for r in results:
        labels.setdefault(r.model, set()).add(source_label(r))
    return [replace(r, model=f"{r.model} [{source_label(r)}]") if len(labels[r.model]) > 1 else r
            for r in results]


def subset_scope(subset: SubsetData) -> tuple[str, Path | None]:
    """A subset's task scope as its reader loaded it, and the candidates it lacks (None when published): the
    reader of each layout knows (the official ``candidates.jsonl``, an mteb copy's ``top_ranked`` config)."""
    if subset.missing_candidates is not None:
        return NO_CANDIDATES, subset.missing_candidates
    return PUBLISHED, None


def mixed_source_warning(folder: Path, synthetic: bool) -> str | None:
    """One line when ``folder`` (a model's results folder of one setting) already holds results on another
    data source than this run's (``synthetic`` or not); None otherwise. Reads only the main files."""
    mine = SYNTHETIC if synthetic else LOCAL
    others = []
    for path in sorted(Path(folder).glob("*.json")) if Path(folder).is_dir() else []:
        if path.name.endswith(PER_QUERY_SUFFIX) or path.name.startswith("."):
            continue
        try:  # a damaged file is the rerun's to name and redo (lmeb.results.shapes), not this warning's
            meta = read_json(path).get("lmeb", {})
        except (OSError, LmebError, AttributeError):
            continue
        theirs = SYNTHETIC if isinstance(meta, dict) and meta.get("synthetic") is True else LOCAL
        if theirs != mine:
            others.append(path.stem)
    if not others:
        return None
    shown = ", ".join(others[:4]) + (f" and {len(others) - 4} more" if len(others) > 4 else "")
    return (f"{folder} holds results on {SYNTHETIC if mine == LOCAL else LOCAL} data ({shown}); this run is on "
            f"{mine} data: tables show them as two rows, never one (use another --output to keep them apart)")
