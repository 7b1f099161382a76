"""Read LMEB data in the official on-disk layout: corpus, queries, qrels and scene candidates.

``<root>/<MemoryType>/<DatasetFolder>/...`` in one of four layouts (see ``Task.layout``). Files are
streamed line by line; a corpus shared by several subsets is read once per ``load_task`` call and
the same ``Corpus`` object is handed to each of them. Every reader hashes the bytes it reads so a
result can name the exact data it came from.

The file readers themselves (``read_corpus``, ``read_queries``, ``read_qrels``, ``read_candidates``)
live in ``lmeb.data.lines`` and are importable from here too. They raise ``DataError`` (file and line)
on bad input, or pass it to ``on_error`` and go on (``lmeb validate``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lmeb.data.lines import (
    Corpus,
    ErrorHandler,
    read_candidates,
    read_corpus,
    read_qrels,
    read_queries,
)
from lmeb.errors import LmebError
from lmeb.tasks.registry import Task
from lmeb.wording import counted

CORPUS, QUERIES, QRELS, CANDIDATES = "corpus.jsonl", "queries.jsonl", "qrels.tsv", "candidates.jsonl"
SYNTHETIC_MARKER = "SYNTHETIC.md"  # at the root of a tree written by lmeb.data.sample
SYNTHETIC_ID_PREFIX = "synthetic"  # every id lmeb.data.sample writes starts with it


def data_root(path: str | Path | None = None) -> Path:
    """The data root: the given path, else ``$LMEB_DATA`` (or its ``eval_data/``); an error if neither exists."""
    value = path or os.environ.get("LMEB_DATA")
    if not value:
        raise LmebError("no data directory: pass --data DIR or set LMEB_DATA")
    root = Path(value).expanduser()
    try:
        is_dir = root.is_dir()
    except OSError as exc:  # a path longer than PATH_MAX, ...
        raise LmebError(f"{str(root)[:200]}{'...' if len(str(root)) > 200 else ''}: data directory unusable "
                        f"({exc.strerror or exc})") from None
    if not is_dir:
        from lmeb.data.lines import _not_readable

        why = _not_readable(root)
        raise LmebError(f"{root}: data directory does not exist" if why == "file not found"
                        else f"{root}: not a data directory ({why})")
    return find_data_root(root)


@dataclass
class SubsetData:
    """Everything needed to evaluate one subset (one LMEB retrieval task)."""

    task: Task
    subset: str
    corpus: Corpus
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]
    scenes: dict[str, list[str]] | None  # scene id -> candidate doc ids; None = the dataset has no candidates
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256 of every file read
    # the candidates its rule names but the data lacks (the file, or an mteb copy's top_ranked config): every
    # query then keeps the whole corpus, another task than the published one (lmeb.results.identity's task scope)
    missing_candidates: Path | None = None

    @property
    def instruction(self) -> str:
        return self.task.instruction(self.subset)

    def candidates(self, query_id: str) -> list[str] | None:
        """The documents this query may be ranked among; None means the whole subset corpus.

        A query whose scene has no candidates line keeps the whole corpus (the official rule).
        """
        if self.scenes is None:
            return None
        return self.scenes.get(self.task.scene_of(query_id))


def subset_paths(task: Task, root: Path, subset: str) -> dict[str, Path | None]:
    """Where the four files of ``subset`` live under ``root`` for the task's layout."""
    base = root / task.path
    if task.layout == "flat":
        corpus, folder = base / CORPUS, base
    elif task.layout == "corpus_at_dataset_root":
        corpus, folder = base / CORPUS, base / subset
    elif task.layout == "corpus_at_scenario":
        scenario = subset.split("/", 1)[0]
        corpus, folder = base / scenario / CORPUS, base / subset
    else:  # corpus_per_subset
        corpus, folder = base / subset / CORPUS, base / subset
    candidates = {None: None, "dataset_root": base / CANDIDATES, "subset": folder / CANDIDATES}[task.candidates]
    return {"corpus": corpus, "queries": folder / QUERIES, "qrels": folder / QRELS, "candidates": candidates}


class TaskReader:
    """Loads the subsets of one task, reading each shared file (corpus, candidates) once.

    Only the most recent corpus and candidates file are kept: the subsets that share a corpus come one
    after another in registry order, so a shared corpus is read once and the reader never holds two
    corpora (MemBench's ten corpora together have 929,115 documents).
    """

    def __init__(self, task: Task, root: Path, on_error: ErrorHandler = None) -> None:
        self.task = task
        self.root = Path(root)
        self.on_error = on_error
        self._corpora: dict[Path, Corpus] = {}
        self._scenes: dict[Path, tuple[dict[str, list[str]], str]] = {}

    def corpus(self, path: Path) -> Corpus:
        """The corpus at ``path``, read once while the following subsets share it."""
        if path not in self._corpora:
            self._corpora.clear()
            self._corpora[path] = read_corpus(path, self.on_error)
        return self._corpora[path]

    def scenes(self, path: Path) -> tuple[dict[str, list[str]], str]:
        """The candidates file at ``path`` as (scene id -> candidate ids, sha256), read once likewise."""
        if path not in self._scenes:
            self._scenes.clear()
            self._scenes[path] = read_candidates(path, self.on_error)
        return self._scenes[path]

    def load(self, subset: str) -> SubsetData:
        name = self.task.subset(subset).name
        paths = subset_paths(self.task, self.root, name)
        corpus = self.corpus(paths["corpus"])  # type: ignore[arg-type]
        query_ids, query_texts, q_sha = read_queries(paths["queries"], self.on_error)  # type: ignore[arg-type]
        qrels, r_sha = read_qrels(paths["qrels"], self.on_error)  # type: ignore[arg-type]
        files = {str(corpus.path): corpus.sha256, str(paths["queries"]): q_sha, str(paths["qrels"]): r_sha}
        scenes, missing = None, None
        cand_path = paths["candidates"]
        if cand_path is not None:
            if cand_path.is_file():
                scenes, c_sha = self.scenes(cand_path)
                files[str(cand_path)] = c_sha
            else:
                scenes, missing = {}, cand_path  # no candidates file: every query keeps the whole corpus
        return SubsetData(self.task, name, corpus, query_ids, query_texts, qrels, scenes, files, missing)


def load_task(task: Task, root: str | Path, subsets: list[str] | tuple[str, ...] | None = None) -> Iterator[SubsetData]:
    """Yield each selected subset of ``task`` (all by default), in registry order."""
    reader = TaskReader(task, data_root(root))
    for name in subsets or task.subset_names:
        yield reader.load(name)


def load_subset(task: Task, root: str | Path, subset: str) -> SubsetData:
    return TaskReader(task, data_root(root)).load(subset)


def present_tasks(root: str | Path, tasks: list[Task]) -> list[Task]:
    """The tasks whose dataset folder exists under ``root`` (the data may hold only some of LMEB)."""
    base = data_root(root)
    return [t for t in tasks if (base / t.path).is_dir()]


def present_selections(root: Path, selections: list, named: bool, log: Callable[[str], None] | None = None,
                       find: Callable[[Path, list[Task]], list[Task]] | None = None) -> list:
    """The selections whose dataset is present under ``root`` (the one rule of run, stats and validate).

    A dataset ``named`` in ``--tasks`` but absent is an error; an absent one otherwise is skipped (``log``
    says which); nothing present at all is an error that points at a data root below ``root`` if one exists.
    ``find`` says which datasets are there (default ``present_tasks``, the official layout; a run passes
    ``available_tasks``, which also counts mteb-format copies).
    """
    present = {t.name for t in (find or present_tasks)(root, [s.task for s in selections])}
    missing = [s.task.name for s in selections if s.task.name not in present]
    if named and missing:
        raise LmebError(f"{root}: no data for {', '.join(missing)} (dataset folder missing)")
    if missing and log:
        log(f"skipping {counted(len(missing), 'dataset')} not present under {root}: {', '.join(missing)}")
    kept = [s for s in selections if s.task.name in present]
    if not kept:
        below = _data_root_below(root)
        hint = f"; the data root seems to be {below}" if below else " (the data root holds Episodic/, Dialogue/, ...)"
        raise LmebError(f"{root}: none of the selected LMEB datasets is present{hint}")
    return kept


def _data_root_below(folder: Path, depth: int = 3) -> Path | None:
    """A folder up to ``depth`` levels below ``folder`` that holds memory-type folders (a mistyped --data)."""
    level = [folder]
    for _ in range(depth):
        level = sorted(p for d in level for p in _subdirs(d))
        for d in level:
            if any((d / m).is_dir() for m in MEMORY_TYPE_FOLDERS):
                return d
    return None


def _subdirs(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []


def available_tasks(root: str | Path, tasks: list[Task]) -> list[Task]:
    """The tasks a run can read under ``root``: in the official layout or as an mteb-format copy."""
    base = data_root(root)
    return [t for t in tasks if (base / t.path).is_dir() or mteb_copy(base, t) is not None]


def mteb_copy(root: str | Path, task: Task) -> Path | None:
    """The folder of ``task``'s copy in mteb's HF-datasets format under ``root``, or None: ``<root>/ReMe/``
    with a README card declaring its configs (``lmeb.data.mteb_format`` reads it), or, when ``root`` is a Hugging
    Face hub cache (where mteb's runs keep their copies), the snapshot at the revision mteb pins."""
    repo = task.mteb_hf_dataset
    cached = Path(root) / f"datasets--{repo.replace('/', '--')}" / "snapshots" / task.mteb_revision
    for folder in (Path(root) / repo.rsplit("/", 1)[-1], cached):
        if (folder / "README.md").is_file():
            return folder
    return None


MEMORY_TYPE_FOLDERS = ("Episodic", "Dialogue", "Semantic", "Procedural")  # the data root's first level


def is_synthetic(root: str | Path, subset: SubsetData | None = None) -> bool:
    """Whether the data is lmeb's synthetic sample, not LMEB: the sample's marker file at ``root``, or
    every query and document id of ``subset`` saying ``synthetic`` (a dataset copied out of a sample)."""
    if (Path(root) / SYNTHETIC_MARKER).is_file():
        return True
    if subset is None or not subset.query_ids:
        return False
    ids = itertools.chain(subset.query_ids, subset.corpus.ids)  # lazily: the first real id ends the check
    return all(i.startswith(SYNTHETIC_ID_PREFIX) for i in ids)


def find_data_root(folder: str | Path) -> Path:
    """The folder holding ``<MemoryType>/<Dataset>/``: ``folder`` itself or its ``eval_data/`` (the hub's name)."""
    folder = Path(folder).expanduser()
    for candidate in (folder, folder / "eval_data"):
        if any((candidate / m).is_dir() for m in MEMORY_TYPE_FOLDERS):
            return candidate
    return folder / "eval_data" if (folder / "eval_data").is_dir() else folder  # e.g. mteb copies only
