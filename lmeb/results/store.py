"""The results store of one run: where its files go, what a rerun keeps, provenance, atomic writes.

One store per (output root, model name, setting), used only when a run has an output (without one the
runner keeps its results in memory and nothing is written). The engine asks it three things per dataset: which
subsets the previous file already holds for this configuration (``previous``: those whose scores
agree with their per-query values, ``lmeb.results.consistency``; the others are re-evaluated with a
warning), whether a finished subset is still current for the data and instruction at hand
(``is_current``: the resume rule), and to write the file after each subset (``write``, which returns
the ``DatasetResult`` it wrote, so the caller never reads back what it just wrote). ``write``
holds the file's lock (``results_lock``), re-reads the file and merges the subsets another run wrote
meanwhile (two runs on disjoint subsets of one dataset both keep theirs), then writes the pair
(per-query sidecar, main file) so that a kill at any point leaves a readable pair (``lmeb.results.dataset_result``).
``check_writable`` runs before any subset is computed, so a read-only or full output fails in one
line up front; a write that fails later (a full disk) is one line too, and the file keeps its subsets.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from lmeb import __version__
from lmeb.engine import efficiency
from lmeb.digest import json_digest
from lmeb.embeddings.store import EmbedStats
from lmeb.errors import LmebError
from lmeb.files import clean_stale_temporaries, writable_folder
from lmeb.results.identity import weights_verified
from lmeb.results.dataset_result import (
    DatasetResult,
    SubsetResult,
    read_dataset_result,
    result_path,
    results_lock,
    write_dataset_result,
)
from lmeb.results.consistency import result_problems
from lmeb.results.rankings import DEPTH, rankings_file, write_rankings
from lmeb.engine.retrieval import Run
from lmeb.reporter import to_stderr
from lmeb.tasks.registry import Task

HARNESS = "lmeb"
TIE_RULE = "score desc, doc id desc"
CANDIDATES_RULE = "each query is ranked among its scene's candidates only (whole corpus if none)"


def data_fingerprint(files: dict[str, str], dataset_dir: Path) -> tuple[str, dict[str, str]]:
    """sha256 over a subset's files (path relative to the dataset folder + content sha256), and that map."""
    rel_files = {}
    for path, sha in files.items():
        try:
            rel = Path(path).resolve().relative_to(dataset_dir.resolve()).as_posix()
        except ValueError:
            rel = Path(path).name
        rel_files[rel] = sha
    ordered = dict(sorted(rel_files.items()))
    return json_digest(sorted(ordered.items())), ordered


def library_versions() -> dict[str, str]:
    """Versions of the libraries that change numbers (those already imported)."""
    out = {"python": platform.python_version()}
    for name in ("numpy", "torch", "transformers", "sentence_transformers", "pytrec_eval", "bm25s"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "__version__"):
            out[name] = str(module.__version__)
    return out


def run_identity(model_config: dict, reranker_config: dict | None, rerank_top_k: int | None, setting: str,
                 k_values: tuple[int, ...]) -> str:
    """The run key: what must match for a previous file's subsets to be kept."""
    return json_digest({
        "harness_version": __version__,
        "model_config": model_config,
        "reranker_config": reranker_config,
        "rerank_top_k": rerank_top_k,
        "setting": setting,
        "k_values": list(k_values),
    })


class ResultsStore:
    """Results files of one model and setting under ``output`` (``<output>/<model>/<setting>/<Dataset>.json``)."""

    def __init__(self, output: Path | str, model: str, setting: str,
                 log: Callable[[str], None] | None = None) -> None:
        self.output = Path(output).expanduser()
        self.model = model
        self.setting = setting  # checked where the run's options were built (lmeb.engine.options.RunOptions)
        self.log = log or to_stderr
        self._read: dict[str, DatasetResult] = {}  # the file the dataset in hand resumed from (``previous``)

    def path(self, task_name: str) -> Path:
        return result_path(self.output, self.model, self.setting, task_name)

    @property
    def folder(self) -> Path:
        return self.path("_").parent

    def check_writable(self) -> None:
        """Create the results folder and write (then delete) a probe file; a one-line error if that fails."""
        folder = writable_folder(self.folder, "results", "choose another --output")
        clean_stale_temporaries(folder)  # what a kill -9 left (the pair itself is recoverable, lmeb.results.dataset_result)

    def run_file(self, task_name: str, subset: str) -> tuple[Path, str]:
        """Where a subset's TREC run goes, and that path relative to the results folder (for provenance)."""
        main = self.path(task_name)
        path = main.with_suffix(".runs") / f"{subset.replace('/', '__')}.trec"
        return path, path.relative_to(main.parent).as_posix()

    def write_rankings(self, task_name: str, subset: str, run: Run) -> dict[str, Any]:
        """Write a subset's rankings sidecar (``lmeb.results.rankings``); its provenance entry."""
        path, rel = rankings_file(self.path(task_name), subset)
        return {"file": rel, "sha256": write_rankings(run, path), "depth": DEPTH}

    def previous(self, task: Task, run_key: str, overwrite: bool, warnings: list[str],
                 selected: Collection[str] | None = None) -> dict[str, SubsetResult]:
        """Subsets already in the task's file that were made with ``run_key`` and agree with their per-query
        values; a damaged file is redone, an inconsistent subset is left out with a warning naming it
        (re-evaluated when ``selected``, which defaults to all)."""
        self._read.clear()  # only the dataset in hand is held (``held``), per-query values and all
        path = self.path(task.name)
        if not path.is_file():
            return {}
        try:
            with results_lock(path):
                old = read_dataset_result(path, per_query=True, strict=False)
        except LmebError as exc:
            self.log(f"warning: {exc}; it will be replaced")
            return {}
        self._read[task.name] = old
        if old.provenance.get("run_key") != run_key:
            if not overwrite:
                message = f"{path} was written with another configuration; its subsets will be replaced"
                if not weights_verified(old):  # lmeb.results.identity: an old weights fingerprint is never trusted
                    message = (f"{path} was written with lmeb's older weights fingerprint (unverified: it can miss a "
                               "change to the weights); its subsets will be recomputed")
                warnings.append(message)
                self.log(f"warning: {message}")
            return {}
        known = set(task.subset_names)
        unknown = sorted(set(old.subsets) - known)
        if unknown:  # a hand edit or another registry: the file is redone, so the entry is not kept forever
            message = f"{path}: unknown subset{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; the dataset " \
                      "will be evaluated again without it"
            warnings.append(message)
            self.log(f"warning: {message}")
            return {}
        wanted = known if selected is None else set(selected)
        problems = {name: reason for name, reason in result_problems(old).items() if name in known}
        for reason in dict.fromkeys(problems.values()):  # one warning per reason (a missing sidecar: every subset)
            names = [name for name, why in problems.items() if why == reason]
            then = "will be re-evaluated" if all(name in wanted for name in names) else "left out until run again"
            message = f"{path}: subset{'s' if len(names) > 1 else ''} {', '.join(names)}: {reason}; {then}"
            warnings.append(message)
            self.log(f"warning: {message}")
        return {name: sub for name, sub in old.subsets.items() if name in known and name not in problems}

    @staticmethod
    def is_current(old: SubsetResult | None, fingerprint: str, instruction: str | None, overwrite: bool) -> bool:
        """The resume rule: keep a finished subset made from the same data files and instruction."""
        return (old is not None and not overwrite
                and old.provenance.get("data_fingerprint") == fingerprint
                and old.provenance.get("instruction") == instruction)  # an edited YAML re-runs

    def held(self, task: Task, done: dict[str, SubsetResult]) -> DatasetResult | None:
        """The file ``previous`` resumed from, holding the subsets of ``done`` (a dataset with nothing to
        run now: its results as they are on disk, already read)."""
        old = self._read.get(task.name)
        if old is None or not done:
            return None
        old.subsets = dict(done)
        return old

    def write(self, task: Task, done: dict[str, SubsetResult], provenance: dict[str, Any]) -> DatasetResult:
        """The task's file with every subset of ``done`` (registry order) and aggregated provenance; returns
        the ``DatasetResult`` written (``path`` set).

        Under the file's lock the file is read again: the subsets another run with the same configuration
        wrote meanwhile (consistent, not in ``done``) are added to ``done``, so concurrent runs lose nothing.
        A failing write (full disk) is a one-line error; the file on disk keeps its previous subsets.
        """
        path = self.path(task.name)
        try:
            with results_lock(path):
                done.update(self._written_meanwhile(task, provenance.get("run_key"), set(done)))
                result = assemble(self.model, self.setting, task, done, provenance)
                write_dataset_result(self.output, result, task.mteb_name, task.mteb_revision)
                return result
        except OSError as exc:
            reason = exc.strerror or exc.__class__.__name__
            raise LmebError(f"{path}: cannot write results ({reason}); it keeps the subsets written before, "
                            "so rerun to resume once it is writable") from None

    def _written_meanwhile(self, task: Task, run_key: str | None, have: set[str]) -> dict[str, SubsetResult]:
        """The consistent subsets of the task's file on disk made with ``run_key``, but for those in ``have``
        (call under the lock)."""
        path = self.path(task.name)
        if run_key is None or not path.is_file():
            return {}
        try:
            # the main file first: with no run writing beside this one it names no new subset, and the
            # per-query sidecar (the large part) is not read and re-checked after every subset
            disk = read_dataset_result(path, strict=False)
            if disk.provenance.get("run_key") != run_key or not (set(disk.subsets) - have) & set(task.subset_names):
                return {}
            disk = read_dataset_result(path, per_query=True, strict=False)
        except LmebError:
            return {}
        disk.subsets = {name: sub for name, sub in disk.subsets.items() if name in task.subset_names
                        and name not in have}
        problems = result_problems(disk)
        return {name: sub for name, sub in disk.subsets.items() if name not in problems}


def assemble(model: str, setting: str, task: Task, done: dict[str, SubsetResult],
             provenance: dict[str, Any]) -> DatasetResult:
    """One dataset's result: the subsets of ``done`` in registry order, the run's provenance plus what is
    summed or hashed over the subsets (data fingerprint, text counts, efficiency, synthetic)."""
    order = {name: i for i, name in enumerate(task.subset_names)}
    subsets = dict(sorted(done.items(), key=lambda item: order.get(item[0], len(order))))
    texts = sum((EmbedStats.from_dict(s.provenance.get("texts", {})) for s in subsets.values()), EmbedStats())
    merged = {
        **provenance,
        "data_fingerprint": json_digest({n: s.provenance.get("data_fingerprint") for n, s in subsets.items()}),
        "texts": texts.as_dict(),
        "efficiency": efficiency.combine(s.provenance.get("efficiency") for s in subsets.values()),
        # lmeb's synthetic sample, not LMEB (lmeb.data.reader.is_synthetic): the scores say nothing about a model
        "synthetic": any(s.provenance.get("synthetic") is True for s in subsets.values()),
    }
    return DatasetResult(model=model, setting=setting, task_name=task.name, memory_type=task.memory_type,
                         subsets=subsets, provenance=merged)
