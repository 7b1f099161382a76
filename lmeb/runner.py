"""The evaluation engine: for each selected dataset and subset, load, embed, search, evaluate, write.

Why it is fast: every unique text is encoded once per (model config, kind, instruction) — a corpus
shared by several subsets is encoded once, not once per subset — and the on-disk embedding cache
makes a rerun encode nothing it has seen (``lmeb.embeddings``). Each query is scored against its
candidates only, with the exact tie rule (``lmeb.retrieval``), which gives the same metrics as the
official harness's "rank the whole corpus, then filter".

Why it is safe: the dataset's results file is rewritten atomically after every subset, merging the
subsets already done, so an interrupted run loses at most the subset in progress and a rerun resumes:
a subset already in the file for the same configuration (harness version, model config, setting,
k values) and the same data (fingerprint of the files' sha256) is skipped unless ``overwrite``.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmeb import __version__
from lmeb.data import SubsetData, TaskReader, data_root
from lmeb.embeddings import EmbeddingStore, EmbedStats
from lmeb.errors import LmebError
from lmeb.metrics import K_VALUES, MAIN_SCORE, evaluate
from lmeb.results import (
    DatasetResult,
    SubsetResult,
    check_setting,
    read_dataset_result,
    result_path,
    write_dataset_result,
)
from lmeb.retrieval import candidate_rows, dense_search, write_trec
from lmeb.tasks import Selection, Task

HARNESS = "lmeb"
TIE_RULE = "score desc, doc id desc"


@dataclass
class RunOptions:
    """How to run: where data and results are, which setting, and what to redo."""

    data: Path
    output: Path
    setting: str = "wo_inst"
    overwrite: bool = False
    save_runs: bool = False
    k_values: tuple[int, ...] = K_VALUES
    rerank_top_k: int = 100
    cache_dir: Path | None = None  # None = no disk cache (memory reuse within a dataset still applies)
    progress: bool = True


@dataclass
class DatasetSummary:
    """What one dataset's run did, for the end-of-run table."""

    dataset: str
    subsets_total: int
    subsets_run: int = 0
    subsets_skipped: int = 0
    ndcg_at_10: float | None = None  # mean over the subsets in the results file
    r_cap_at_10: float | None = None
    texts: EmbedStats = field(default_factory=EmbedStats)
    seconds: float = 0.0
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)


def model_kind(model: Any) -> str:
    """``encoder``, ``searcher`` (BM25-like: ranks a subset itself) or ``reranker`` (scores pairs)."""
    if hasattr(model, "encode"):
        return "encoder"
    if hasattr(model, "search"):
        return "searcher"
    if hasattr(model, "score"):
        return "reranker"
    raise LmebError(f"{type(model).__name__} is neither an encoder, a searcher nor a reranker")


def data_fingerprint(subset: SubsetData, root: Path) -> tuple[str, dict[str, str]]:
    """sha256 over the subset's files (path relative to the dataset folder + content sha256)."""
    base = Path(root) / subset.task.path
    files = {}
    for path, sha in subset.files.items():
        try:
            rel = Path(path).resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            rel = Path(path).name
        files[rel] = sha
    blob = json.dumps(sorted(files.items())).encode()
    return hashlib.sha256(blob).hexdigest(), dict(sorted(files.items()))


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("numpy", "torch", "transformers", "sentence_transformers", "pytrec_eval", "bm25s"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "__version__"):
            out[name] = str(module.__version__)
    return out


class Runner:
    """Evaluates one model (plus an optional reranker) on selected datasets and writes results files."""

    def __init__(self, model: Any, options: RunOptions, name: str, reranker: Any | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        check_setting(options.setting)
        self.model = model
        self.kind = model_kind(model)
        self.reranker = reranker
        self.options = options
        self.name = name
        self.root = data_root(options.data)
        self.log = log or (lambda message: print(message, file=sys.stderr))
        self.store = (EmbeddingStore(model, options.cache_dir, progress=self._bar if options.progress else None)
                      if self.kind == "encoder" else None)
        self.model_config = dict(model.config())
        self.reranker_config = dict(reranker.config()) if reranker is not None else None
        self.search_k = max(options.k_values)
        identity = {
            "harness_version": __version__,
            "model_config": self.model_config,
            "reranker_config": self.reranker_config,
            "rerank_top_k": options.rerank_top_k if reranker is not None else None,
            "setting": options.setting,
            "k_values": list(options.k_values),
        }
        self.run_key = _hash(identity)

    # ----------------------------------------------------------------------------------------- progress
    def _bar(self, **kwargs: Any) -> Any:
        from tqdm.auto import tqdm

        return tqdm(file=sys.stderr, leave=False, dynamic_ncols=True, **kwargs)

    # ------------------------------------------------------------------------------------- provenance
    def provenance(self) -> dict[str, Any]:
        """Dataset-level provenance (the ``lmeb`` block of the results file)."""
        return {
            "harness": HARNESS,
            "harness_version": __version__,
            "run_key": self.run_key,
            "model_kind": self.kind,
            "model_config": self.model_config,
            "reranker_config": self.reranker_config,
            "rerank_top_k": self.options.rerank_top_k if self.reranker is not None else None,
            "similarity": getattr(self.model, "similarity", None),
            "k_values": list(self.options.k_values),
            "search_k": self.search_k,
            "tie_rule": TIE_RULE,
            "candidates": "each query is ranked among its scene's candidates only (whole corpus if none)",
            "versions": _versions(),
        }

    def instruction(self, subset: SubsetData) -> str | None:
        """The subset's instruction in the w_inst setting (queries and rerankers get it), else None."""
        return subset.instruction if self.options.setting == "w_inst" else None

    # ------------------------------------------------------------------------------------------ search
    def search(self, subset: SubsetData, seconds: dict[str, float]) -> tuple[dict, EmbedStats, list]:
        """The run of one subset (top ``search_k`` per query), timing each stage into ``seconds``."""
        instruction = self.instruction(subset)
        before = self.store.stats.copy() if self.store is not None else EmbedStats()
        with _timed(seconds, "search"):
            rows = candidate_rows(subset)
        if self.kind == "encoder":
            assert self.store is not None
            with _timed(seconds, "encode"):
                docs = self.store.embed(subset.corpus.texts, "document", None)
                queries = self.store.embed(subset.query_texts, "query", instruction)
            with _timed(seconds, "search"):
                run = dense_search(queries, docs, subset, similarity=self.model.similarity, k=self.search_k,
                                   rows=rows)
        elif self.kind == "searcher":
            with _timed(seconds, "search"):
                run = self.model.search(subset, self.search_k, instruction)
        else:
            from lmeb.rerank import rerank_candidates

            with _timed(seconds, "search"):
                run = rerank_candidates(subset, self.model, instruction, self.search_k)
        if self.reranker is not None:
            from lmeb.rerank import rerank

            with _timed(seconds, "rerank"):
                run = rerank(subset, run, self.reranker, self.options.rerank_top_k, instruction)
        after = self.store.stats if self.store is not None else EmbedStats()
        return run, after - before, rows

    def reranker_counts(self) -> dict[str, dict[str, int]]:
        """Running counters of the rerankers in use (e.g. KaLM: pairs, passages encoded, cache hits)."""
        out = {}
        for role, model in (("model", self.model), ("reranker", self.reranker)):
            stats = getattr(model, "stats", None) if model is not None and not hasattr(model, "encode") else None
            if isinstance(stats, dict):
                out[role] = {k: int(v) for k, v in stats.items() if isinstance(v, (int, float))}
        return out

    # -------------------------------------------------------------------------------------------- run
    def run(self, selections: list[Selection]) -> list[DatasetSummary]:
        return [self.run_dataset(sel.task, sel.subsets) for sel in selections]

    def run_dataset(self, task: Task, subsets: tuple[str, ...] | list[str]) -> DatasetSummary:
        """Evaluate ``subsets`` of ``task``; the results file is rewritten after each subset."""
        started = time.perf_counter()
        summary = DatasetSummary(task.name, len(subsets))
        path = result_path(self.options.output, self.name, self.options.setting, task.name)
        done = self._previous(path, task, summary)
        if self.store is not None:
            self.store.new_scope()
        reader = TaskReader(task, self.root)
        bar = self._bar(total=len(subsets), desc=task.name, unit="subset") if self.options.progress else None
        try:
            for name in subsets:
                if bar is not None:
                    bar.set_postfix_str(f"{name}: load")
                seconds: dict[str, float] = {}
                with _timed(seconds, "load"):
                    subset = reader.load(name)
                fingerprint, files = data_fingerprint(subset, self.root)
                old = done.get(name)
                if old is not None and not self.options.overwrite and \
                        old.provenance.get("data_fingerprint") == fingerprint and \
                        old.provenance.get("instruction") == self.instruction(subset):  # an edited YAML re-runs
                    summary.subsets_skipped += 1
                    if bar is not None:
                        bar.update(1)
                    continue
                if bar is not None:
                    bar.set_postfix_str(f"{name}: {'encode + ' if self.kind == 'encoder' else ''}search")
                result = self.evaluate_subset(subset, seconds, summary)
                result.provenance.update(data_fingerprint=fingerprint, data_files=files)
                done[name] = result
                summary.subsets_run += 1
                summary.path = self._write(task, done, path)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        if done and summary.path is None and path.is_file():
            summary.path = path
        if done:
            summary.ndcg_at_10 = _mean(s.scores.get("ndcg_at_10") for s in done.values())
            summary.r_cap_at_10 = _mean(s.scores.get("R_cap_at_10") for s in done.values())
        summary.seconds = time.perf_counter() - started
        return summary

    def evaluate_subset(self, subset: SubsetData, seconds: dict[str, float], summary: DatasetSummary) -> SubsetResult:
        """Search and score one loaded subset (writes its TREC run file with ``save_runs``)."""
        counts_before = self.reranker_counts()
        run, texts, rows = self.search(subset, seconds)
        rerank_counts = {role: {k: v - counts_before.get(role, {}).get(k, 0) for k, v in stats.items()}
                         for role, stats in self.reranker_counts().items()}
        summary.texts += texts
        no_candidates = sum(1 for r in rows if r is not None and r.shape[0] == 0)
        if no_candidates:
            where = f"{subset.task.name}/{subset.subset}"
            message = (f"{where}: none of its {len(rows)} queries has a candidate document in the corpus (all score 0)"
                       if no_candidates == len(rows) else
                       f"{where}: {no_candidates} of {len(rows)} queries have no candidate document in the corpus "
                       "(they score 0)")
            summary.warnings.append(message)
            self.log(f"warning: {message}")
        with _timed(seconds, "metrics"):
            evaluation = evaluate(subset.qrels, run, self.options.k_values)
        run_file = None
        if self.options.save_runs:
            with _timed(seconds, "write_run"):
                out = result_path(self.options.output, self.name, self.options.setting, subset.task.name)
                run_path = out.with_suffix(".runs") / f"{subset.subset.replace('/', '__')}.trec"
                write_trec(run, run_path, _tag(self.name))
                run_file = run_path.relative_to(out.parent).as_posix()
        query_ids = list(evaluation.per_query.get(MAIN_SCORE, {}))
        per_query = evaluation.columns(query_ids)
        total = round(sum(seconds.values()), 4)
        provenance = {
            "mteb_subset": subset.task.subset(subset.subset).mteb_name,
            "instruction": self.instruction(subset),
            "queries": len(subset.query_ids),
            "evaluated_queries": len(query_ids),
            "documents": len(subset.corpus),
            "queries_without_candidates": no_candidates,
            "texts": texts.as_dict(),
            "rerank_counts": rerank_counts or None,  # pairs scored, passages encoded / from cache (KaLM)
            "seconds": {k: round(v, 4) for k, v in seconds.items()},
            "run_file": run_file,
        }
        return SubsetResult(subset=subset.subset, scores=evaluation.scores, main_score=evaluation.main_score,
                            evaluation_time=total, per_query=per_query, query_ids=query_ids, provenance=provenance)

    # ----------------------------------------------------------------------------------------- files
    def _previous(self, path: Path, task: Task, summary: DatasetSummary) -> dict[str, SubsetResult]:
        """Subsets already in the results file that were made with this configuration."""
        if not path.is_file():
            return {}
        try:
            old = read_dataset_result(path, per_query=True)
        except LmebError as exc:
            self.log(f"warning: {exc}; it will be replaced")
            return {}
        if old.provenance.get("run_key") != self.run_key:
            if not self.options.overwrite:
                message = f"{path} was written with another configuration; its subsets will be replaced"
                summary.warnings.append(message)
                self.log(f"warning: {message}")
            return {}
        known = set(task.subset_names)
        return {name: sub for name, sub in old.subsets.items() if name in known}

    def _write(self, task: Task, done: dict[str, SubsetResult], path: Path) -> Path:
        order = {name: i for i, name in enumerate(task.subset_names)}
        subsets = dict(sorted(done.items(), key=lambda item: order.get(item[0], len(order))))
        texts = sum((EmbedStats.from_dict(s.provenance.get("texts", {})) for s in subsets.values()), EmbedStats())
        provenance = {
            **self.provenance(),
            "data_fingerprint": _hash({n: s.provenance.get("data_fingerprint") for n, s in subsets.items()}),
            "texts": texts.as_dict(),
        }
        result = DatasetResult(model=self.name, setting=self.options.setting, task_name=task.name,
                               memory_type=task.memory_type, subsets=subsets, provenance=provenance)
        written = write_dataset_result(self.options.output, result, task.mteb_name, task.mteb_revision)
        if written != path:  # pragma: no cover - both come from result_path
            raise LmebError(f"results written to {written}, expected {path}")
        return written


@contextmanager
def _timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start


def _mean(values: Any) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _tag(name: str) -> str:
    return "".join("_" if c.isspace() else c for c in name.replace("/", "__")) or "lmeb"
