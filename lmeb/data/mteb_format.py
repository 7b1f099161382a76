"""Read LMEB datasets in mteb's HF-datasets format (``mteb/<Name>`` copies, or ``lmeb convert --to mteb``).

A copy is a folder (``<data root>/<Name>/``, ``Name`` = the mteb repository's name: ``ReMe``,
``Proced_mem_bench``, ``LMEBMLDR``) whose README card declares, per mteb subset (``bfcl_qwen3_8b__task_query``),
the configs ``<subset>-corpus`` (``id``, ``title``, ``text``), ``<subset>-queries`` (``id``, ``text``),
``<subset>-qrels`` (``query-id``, ``corpus-id``, ``score``) and, for datasets with candidates,
``<subset>-top_ranked`` (``query-id``, ``corpus-ids``), each with a ``test`` split: what mteb's
``RetrievalDatasetLoader`` reads. Each config is loaded through ``datasets.load_dataset`` and turned into
the same ``SubsetData`` the official layout gives, under exactly the same rules: a document's text is
``(title + ' ' + text).strip()``, ids are strings, and a query is ranked among its ``top_ranked`` list
(the official candidates of its scene) or, when it has no row, the whole corpus (the official rule for a
scene without a candidates line). Task and subset names are matched in either spelling, as everywhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import yaml

from lmeb.data.lines import Corpus, ErrorHandler, as_id, data_error, document_text
from lmeb.data.reader import SubsetData, TaskReader, mteb_copy
from lmeb.errors import LmebError
from lmeb.tasks.registry import Task

KINDS = ("corpus", "queries", "qrels", "top_ranked")
SPLIT = "test"
CARD = "README.md"


def card_configs(folder: Path) -> dict[str, list[Path]]:
    """config name -> its ``test`` data files, from the README card's YAML header (``configs:``)."""
    card = folder / CARD
    try:
        text = card.read_text(encoding="utf-8")
    except OSError as exc:
        raise LmebError(f"{card}: cannot read ({exc.strerror or exc})") from None
    if not text.startswith("---"):
        raise LmebError(f"{card}: no YAML header declaring the dataset's configs")
    try:
        header = yaml.safe_load(text.split("---", 2)[1]) or {}
    except yaml.YAMLError as exc:
        raise LmebError(f"{card}: invalid YAML header ({getattr(exc, 'problem', exc)})") from None
    out: dict[str, list[Path]] = {}
    for config in header.get("configs") or []:
        files = config.get("data_files") if isinstance(config, dict) else None
        entries = files if isinstance(files, list) else [{"split": SPLIT, "path": files}]
        paths = []
        for entry in entries:
            if isinstance(entry, dict) and entry.get("split", SPLIT) == SPLIT:
                for pattern in entry["path"] if isinstance(entry.get("path"), list) else [entry.get("path")]:
                    paths += sorted(folder.glob(str(pattern))) if pattern else []
        if isinstance(config, dict) and config.get("config_name"):
            out[str(config["config_name"])] = paths
    if not out:
        raise LmebError(f"{card}: declares no configs")
    return out


def load_config(folder: Path, config: str) -> dict[str, list[Any]]:
    """One config's ``test`` split as columns, through ``datasets.load_dataset`` (one line on failure)."""
    import datasets

    datasets.disable_progress_bars()
    try:
        data = datasets.load_dataset(str(folder), config, split=SPLIT)
    except Exception as exc:  # datasets' many error types: one line naming the folder and config
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LmebError(f"{folder}: cannot load config {config!r}: {first}") from None
    return data.to_dict()


def _sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


class MtebReader:
    """Loads the subsets of one task from its mteb-format copy (``TaskReader``'s interface); a corpus
    several subsets declare with the same files is read once."""

    def __init__(self, task: Task, folder: Path, on_error: ErrorHandler = None) -> None:
        self.task = task
        self.folder = Path(folder)
        self.on_error = on_error
        self.configs = card_configs(self.folder)
        self._corpus: tuple[tuple[Path, ...], Corpus, dict[str, list[Any]]] | None = None

    def files(self, subset: str, kind: str) -> list[Path]:
        """The data files of ``<subset>-<kind>`` (an error naming the card when it declares none)."""
        name = f"{self.task.subset(subset).mteb_name}-{kind}"
        paths = self.configs.get(name)
        if paths is None:
            raise LmebError(f"{self.folder / CARD}: no config {name!r} for {self.task.name}/{subset}")
        if not paths:
            raise LmebError(f"{self.folder / CARD}: config {name!r} names no file present in {self.folder}")
        return paths

    def corpus_rows(self, subset: str) -> tuple[Corpus, dict[str, list[Any]]]:
        """The subset's corpus (as ``read_corpus`` gives it) and its raw columns (id, title, text)."""
        paths = tuple(self.files(subset, "corpus"))
        if self._corpus is None or self._corpus[0] != paths:
            cols = load_config(self.folder, f"{self.task.subset(subset).mteb_name}-corpus")
            ids = [as_id(i) for i in cols.get("id") or cols.get("_id") or []]
            n = len(ids)
            titles, texts = cols.get("title") or [None] * n, cols.get("text") or [None] * n
            corpus = Corpus(path=paths[0], ids=ids, texts=[document_text(t, x) for t, x in zip(titles, texts,
                                                                                           strict=True)],
                            sha256=_sha256(list(paths)))
            self._corpus = (paths, corpus, {"id": ids, "title": titles, "text": texts})
        return self._corpus[1], self._corpus[2]

    def load(self, subset: str) -> SubsetData:
        name = self.task.subset(subset).name
        mteb = self.task.subset(subset).mteb_name
        for kind in ("queries", "qrels"):
            self.files(name, kind)  # a config the card does not declare: its error before any loading
        corpus, _ = self.corpus_rows(name)
        files = {str(corpus.path): corpus.sha256}
        q = load_config(self.folder, f"{mteb}-queries")
        query_ids, query_texts = [as_id(i) for i in q.get("id") or q.get("_id") or []], [str(t) for t in q["text"]]
        files[str(self.files(name, "queries")[0])] = _sha256(self.files(name, "queries"))
        r = load_config(self.folder, f"{mteb}-qrels")
        qrels: dict[str, dict[str, int]] = {}
        for qid, did, score in zip(r["query-id"], r["corpus-id"], r["score"], strict=True):
            row = qrels.setdefault(as_id(qid), {})
            if as_id(did) in row:
                self._report(f"{mteb}-qrels", f"duplicate qrels row for ({qid}, {did})")
            row[as_id(did)] = int(score)
        files[str(self.files(name, "qrels")[0])] = _sha256(self.files(name, "qrels"))
        task, scenes, missing = self.task, None, None
        if f"{mteb}-top_ranked" in self.configs:
            t = load_config(self.folder, f"{mteb}-top_ranked")
            scenes = {as_id(qid): [as_id(d) for d in docs] for qid, docs in zip(t["query-id"], t["corpus-ids"],
                                                                            strict=True)}
            files[str(self.files(name, "top_ranked")[0])] = _sha256(self.files(name, "top_ranked"))
            task = dataclasses.replace(self.task, scene_id="query_id")  # top_ranked is per query
        elif self.task.candidates is not None:  # no candidates at all: every query keeps the whole corpus
            scenes, missing = {}, self.folder / f"{mteb}-top_ranked"
        return SubsetData(task, name, corpus, query_ids, query_texts, qrels, scenes, files, missing)

    def _report(self, config: str, message: str) -> None:
        error = data_error(self.folder / CARD, "duplicate_id", f"config {config!r}: {message}")
        if self.on_error is None:
            raise error
        self.on_error(error)


def open_reader(task: Task, root: Path, on_error: ErrorHandler = None) -> TaskReader | MtebReader:
    """The reader of ``task`` under ``root``: the official layout when its folder is there, else its
    mteb-format copy (``<root>/<Name>/``), else the official reader (whose errors name the missing files)."""
    if not (Path(root) / task.path).is_dir():
        folder = mteb_copy(root, task)
        if folder is not None:
            return MtebReader(task, folder, on_error)
    return TaskReader(task, root, on_error)
