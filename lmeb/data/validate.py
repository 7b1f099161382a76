"""Check LMEB data files in the official layout, collecting every problem in one pass.

Errors are what would stop or corrupt an evaluation: missing files, malformed lines, missing fields,
non-integer scores, duplicate ids, empty subsets, and queries without any qrels line (the official
harness crashes on them). Warnings are what the official data itself contains and the harness copes
with: qrels naming documents or queries that do not exist (KnowMeBench has 53, LoCoMo 2), candidate ids
not in the corpus, scenes without a candidates line (their queries keep the whole corpus). A dataset with
a candidates rule but no candidates file is an error (its queries would be ranked against the whole
corpus: another task), a warning with ``allow_missing_candidates``.

Only datasets present under the data root are checked; an absent one is skipped, unless it was named.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lmeb.data.lines import ERROR_KINDS, read_candidates, read_qrels, read_queries
from lmeb.data.reader import TaskReader, data_root, present_selections, subset_paths
from lmeb.errors import DataError
from lmeb.tasks.registry import Selection, Task, select
from lmeb.wording import counted

ERRORS = (
    *ERROR_KINDS,  # what the readers report
    "empty_subset",
    "query_without_qrels",
    "missing_dataset",
    "missing_candidates_file",  # candidates rule, no file: a different task (lmeb.results.identity)
)
WARNINGS = (
    "qrels_unknown_doc",  # one per missing document per subset (mteb's num_missing_corpus_ids)
    "qrels_unknown_query",  # one per missing query per subset
    "candidate_unknown_doc",
    "scene_without_candidates",
    "no_candidates_file",  # the same, accepted with allow_missing_candidates
)


@dataclass(frozen=True)
class Problem:
    """One finding: ``kind`` is one of ERRORS or WARNINGS; prints as ``path:line: message``."""

    kind: str
    path: str
    line: int | None
    message: str
    dataset: str
    subset: str | None = None

    @property
    def is_error(self) -> bool:
        return self.kind in ERRORS

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


@dataclass
class DatasetReport:
    """What was checked in one dataset; ``skipped`` when its folder is absent."""

    name: str
    path: str
    skipped: bool = False
    subsets: int = 0
    queries: int = 0
    documents: int = 0
    errors: int = 0
    warnings: Counter = field(default_factory=Counter)


@dataclass
class Report:
    """The result of ``validate``: every problem found, split into errors and warnings."""

    root: Path
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    datasets: list[DatasetReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def count(self, kind: str) -> int:
        return sum(1 for p in (self.errors if kind in ERRORS else self.warnings) if p.kind == kind)

    def add(self, problem: Problem, summary: DatasetReport) -> None:
        if problem.is_error:
            self.errors.append(problem)
            summary.errors += 1
        else:
            self.warnings.append(problem)
            summary.warnings[problem.kind] += 1


class _DatasetCheck:
    """Checks the selected subsets of one present dataset; shared files are read and checked once."""

    def __init__(self, task: Task, root: Path, report: Report, summary: DatasetReport,
                 allow_missing_candidates: bool = False) -> None:
        self.allow_missing_candidates = allow_missing_candidates
        self.task = task
        self.root = root
        self.report = report
        self.summary = summary
        self.subset: str | None = None
        self.reader = TaskReader(task, root, on_error=self._on_error)
        self.checked_corpora: set[Path] = set()
        self.checked_candidates: dict[Path, tuple[dict[str, list[str]], dict[str, int]]] = {}

    def _problem(self, kind: str, path: Path | str, message: str, line: int | None = None) -> None:
        self.report.add(Problem(kind, str(path), line, message, self.task.name, self.subset), self.summary)

    def _on_error(self, error: DataError) -> None:
        self._problem(getattr(error, "kind", "malformed_line"), error.path, error.reason, error.line)

    def check(self, subset: str) -> None:
        self.subset = subset
        paths = subset_paths(self.task, self.root, subset)
        corpus_path, queries_path, qrels_path = paths["corpus"], paths["queries"], paths["qrels"]
        assert corpus_path is not None and queries_path is not None and qrels_path is not None
        corpus = self.reader.corpus(corpus_path)
        if corpus_path not in self.checked_corpora:
            self.checked_corpora.add(corpus_path)
            self.summary.documents += len(corpus)
            if corpus_path.is_file() and not len(corpus):
                self._problem("empty_subset", corpus_path, "the corpus has no documents")
        query_lines: dict[str, int] = {}
        query_ids, _, _ = read_queries(queries_path, self._on_error, lines=query_lines)
        qrel_lines: dict[tuple[str, str], int] = {}
        qrels, _ = read_qrels(qrels_path, self._on_error, lines=qrel_lines)
        self.summary.subsets += 1
        self.summary.queries += len(query_ids)
        if queries_path.is_file() and not query_ids:
            self._problem("empty_subset", queries_path, "no queries")
        if qrels_path.is_file():
            for qid in query_ids:
                if qid not in qrels:
                    message = f"query {qid!r} has no qrels line in {qrels_path.name} (the official harness fails)"
                    self._problem("query_without_qrels", queries_path, message, query_lines[qid])
        if corpus_path.is_file() and queries_path.is_file():
            # one warning per missing document (or query) of the subset, at its first qrels line
            known_docs = corpus.row
            unknown: dict[tuple[str, str], list[int]] = {}
            for (qid, doc_id), line in qrel_lines.items():
                if qid not in query_lines:
                    unknown.setdefault(("qrels_unknown_query", qid), []).append(line)
                elif doc_id not in known_docs:
                    unknown.setdefault(("qrels_unknown_doc", doc_id), []).append(line)
            for (kind, name), lines in unknown.items():
                what = (
                    f"query {name!r} is not in {queries_path.name}"
                    if kind == "qrels_unknown_query"
                    else (f"document {name!r} is not in the corpus")
                )
                more = f" ({len(lines)} qrels rows)" if len(lines) > 1 else ""
                self._problem(kind, qrels_path, what + more, min(lines))
        if paths["candidates"] is not None:
            self._check_candidates(paths["candidates"], corpus_path, corpus.row, query_ids, query_lines, queries_path)

    def _check_candidates(
        self,
        path: Path,
        corpus_path: Path,
        known_docs: dict[str, int],
        query_ids: list[str],
        query_lines: dict[str, int],
        queries_path: Path,
    ) -> None:
        if not path.is_file():
            if path not in self.checked_candidates:
                self.checked_candidates[path] = ({}, {})
                message = (
                    f"no {path.name} (the dataset's candidates rule is {self.task.candidates}):"
                    " every query keeps the whole corpus"
                )
                if self.allow_missing_candidates:
                    self._problem("no_candidates_file", path, message)
                else:
                    self._problem("missing_candidates_file", path, f"{message}, not the published task "
                                  "(--allow-missing-candidates accepts it)")
            return
        if path not in self.checked_candidates:
            lines: dict[str, int] = {}
            scenes, _ = read_candidates(path, self._on_error, lines=lines)
            self.checked_candidates = {path: (scenes, lines)}  # keep one candidates file in memory
            if corpus_path.is_file():
                for scene, docs in scenes.items():
                    missing = [d for d in docs if d not in known_docs]
                    if missing:
                        message = (
                            f"scene {scene!r}: {len(missing)} of {len(docs)} candidate ids are not in the corpus"
                            f" (e.g. {missing[0]!r})"
                        )
                        self._problem("candidate_unknown_doc", path, message, lines[scene])
        scenes, _ = self.checked_candidates[path]
        orphans: dict[str, list[str]] = {}
        for qid in query_ids:
            scene = self.task.scene_of(qid)
            if scene not in scenes:
                orphans.setdefault(scene, []).append(qid)
        for scene, qids in orphans.items():
            message = f"scene {scene!r} has no line in {path.name}: {len(qids)} queries keep the whole corpus"
            self._problem("scene_without_candidates", queries_path, message, query_lines[qids[0]])


def validate(
    root: str | Path | None = None,
    tasks: str | list[str] | None = None,
    memory_types: list[str] | None = None,
    allow_missing_candidates: bool = False,
) -> Report:
    """Check the selected subsets of every dataset present under ``root``; never raises on bad data.

    ``tasks`` is a selection like ``"LoCoMo,Gorilla/gorilla_tensor"`` (see ``lmeb.tasks.registry.select``);
    a dataset named there but absent is an error, an absent dataset otherwise is skipped.
    ``allow_missing_candidates`` makes a missing candidates file a warning instead of an error.
    """
    base = data_root(root)
    named = bool(tasks)
    selections: list[Selection] = select(tasks, memory_types)
    if not named:  # a folder holding none of them (e.g. one above the data root) is an error, not "0 checked: OK"
        present_selections(base, selections, named=False)
    report = Report(base)
    for sel in selections:
        summary = DatasetReport(sel.task.name, sel.task.path)
        report.datasets.append(summary)
        if not (base / sel.task.path).is_dir():
            summary.skipped = True
            if named:
                problem = Problem(
                    "missing_dataset", str(base / sel.task.path), None, "dataset folder not found", sel.task.name
                )
                report.add(problem, summary)
            continue
        check = _DatasetCheck(sel.task, base, report, summary, allow_missing_candidates)
        for subset in sel.subsets:
            check.check(subset)
    return report


def format_report(report: Report, max_per_kind: int | None = 5) -> list[str]:
    """Human-readable lines: every error, up to ``max_per_kind`` warnings of each kind per dataset, summaries."""
    lines = [str(p) for p in report.errors]
    shown: Counter = Counter()
    hidden: Counter = Counter()
    for p in report.warnings:
        key = (p.dataset, p.kind)
        if max_per_kind is None or shown[key] < max_per_kind:
            shown[key] += 1
            lines.append(f"warning: {p}")
        else:
            hidden[key] += 1
    for (dataset, kind), n in hidden.items():
        lines.append(f"warning: {dataset}: {n} more {kind} warnings (--all-warnings shows them)")
    if lines:
        lines.append("")
    width = max((len(d.name) for d in report.datasets), default=10)
    for d in report.datasets:
        if d.skipped:
            lines.append(f"{d.name:<{width}}  skipped ({d.path} not present)")
            continue
        warn = ", ".join(f"{k} {n}" for k, n in sorted(d.warnings.items()))
        total_warn = sum(d.warnings.values())
        lines.append(
            f"{d.name:<{width}}  {counted(d.subsets, 'subset')}, {counted(d.queries, 'query', 'queries')}, "
            f"{counted(d.documents, 'document')}: {counted(d.errors, 'error')}, {counted(total_warn, 'warning')}"
            + (f" ({warn})" if warn else "")
        )
    checked = [d for d in report.datasets if not d.skipped]
    lines.append(
        f"total: {counted(len(checked), 'dataset')} checked ({counted(sum(d.subsets for d in checked), 'subset')}), "
        f"{len(report.datasets) - len(checked)} skipped, {counted(len(report.errors), 'error')}, "
        f"{counted(len(report.warnings), 'warning')} in {report.root}"
    )
    return lines
