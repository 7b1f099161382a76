"""The evaluation engine: for each selected dataset and subset, load, embed, search, evaluate, write.

Why it is fast: every unique text is encoded once per (model config, kind, instruction) — a corpus
shared by several subsets is encoded once, not once per subset — and the on-disk embedding cache
makes a rerun encode nothing it has seen (``lmeb.embeddings.store``). Each query is scored against its
candidates only, with the exact tie rule (``lmeb.engine.retrieval``), which gives the same metrics as the
official harness's "rank the whole corpus, then filter".

Why it is safe: the dataset's results file is rewritten atomically after every subset, merging the
subsets already done, so an interrupted run loses at most the subset in progress and a rerun resumes:
a subset already in the file for the same configuration (harness version, model config, setting,
k values) and the same data (fingerprint of the files' sha256) is skipped unless ``overwrite``.

Values flow one way: ``run`` returns each dataset's ``DatasetSummary`` holding its ``DatasetResult`` in memory
(every subset, per-query values; rankings too when nothing is written). With an output the results store
writes each subset as it finishes and hands back what it wrote; without one nothing touches the disk.

The runner only orchestrates: the model's retrieval strategy is chosen once (``lmeb.engine.strategy``), the
results files (resume rule, provenance, atomic writes) belong to ``lmeb.results.store.ResultsStore``, the
options are checked once where they are built (``lmeb.engine.options.RunOptions``), log lines and bars come
from the caller's ``lmeb.reporter.Reporter``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmeb import __version__
from lmeb.cache import Cache
from lmeb.data.mteb_format import open_reader
from lmeb.data.origin import data_origin, read_manifest
from lmeb.data.reader import SubsetData, is_synthetic, subset_paths
from lmeb.embeddings.store import EmbedStats
from lmeb.engine import efficiency
from lmeb.engine.growth import POOL, scope_rows, scoped_run_key
from lmeb.engine.metrics import MAIN_SCORE, evaluate
from lmeb.engine.options import RunOptions
from lmeb.engine.retrieval import Rows, Run, write_trec
from lmeb.engine.strategy import strategy_for, timed
from lmeb.errors import LmebError
from lmeb.models.base import model_stats
from lmeb.reporter import Reporter
from lmeb.results.dataset_result import DatasetResult, SubsetResult
from lmeb.results.identity import mixed_source_warning, subset_scope
from lmeb.results.rankings import DEPTH, top_rankings
from lmeb.results.store import (
    CANDIDATES_RULE,
    HARNESS,
    TIE_RULE,
    ResultsStore,
    assemble,
    data_fingerprint,
    library_versions,
    run_identity,
)
from lmeb.tasks.registry import Selection, Task
from lmeb.tasks.settings import setting_instruction


@dataclass
class DatasetSummary:
    """What one dataset's run did, for the end-of-run table, and its results in memory (``result``)."""

    dataset: str
    subsets_total: int
    subsets_run: int = 0
    subsets_skipped: int = 0
    texts: EmbedStats = field(default_factory=EmbedStats)
    # the models' counters over the subsets run now (kept ones cost nothing): {role: {counter: n}}, e.g.
    # {"model": {"requests": 412, "tokens": 1234567, "retries": 3}}; {} when no model keeps ``stats``
    model_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    result: DatasetResult | None = None  # every subset the dataset now has (None: none); path set when written
    model: str = ""  # the run's results name (a growth run's scope included: bm25@x4): what groups summaries

    @property
    def path(self) -> Path | None:
        """The results file written (None when the results are in memory only)."""
        return self.result.path if self.result is not None else None

    @property
    def subsets(self) -> dict[str, SubsetResult]:
        return self.result.subsets if self.result is not None else {}


def check_evaluable(subset: SubsetData, root: Path) -> None:
    """A one-line error naming the file when the subset has no document, no query or no judged query
    (``lmeb validate`` lists them too): such a subset would score 0 and pull its dataset's mean down."""
    where = f"{subset.task.name}/{subset.subset}"
    paths = subset_paths(subset.task, root, subset.subset)
    if not subset.corpus.ids:
        raise LmebError(f"{subset.corpus.path}: no documents, so {where} cannot be evaluated (see lmeb validate)")
    if not subset.query_ids:
        raise LmebError(f"{paths['queries']}: no queries, so {where} cannot be evaluated (see lmeb validate)")
    if not any(subset.qrels.get(qid) for qid in subset.query_ids):
        raise LmebError(f"{paths['qrels']}: no relevance judgement for any query of {where}, so it cannot be "
                        "evaluated (see lmeb validate)")


class Runner:
    """Evaluates one model (plus an optional reranker) on selected datasets; returns the results in memory
    and, when ``options.output`` is set, writes them as each subset finishes.

    ``cache``: the embedding cache (None = off; memory reuse within a dataset still applies);
    ``reporter``: log lines and bars (default: stderr lines, no bars).
    ``model_config``/``reranker_config`` default to the models' own ``config()`` (what keys the resume rule).
    """

    def __init__(self, model: Any, options: RunOptions, name: str, reranker: Any | None = None,
                 cache: Cache | None = None, reporter: Reporter | None = None,
                 model_config: dict[str, Any] | None = None, reranker_config: dict[str, Any] | None = None) -> None:
        self.model = model
        self.reranker = reranker
        self.options = options
        self.name = name
        self.root = options.data
        self.manifest = read_manifest(self.root)  # where downloaded files came from: read once, not per subset
        self.reporter = reporter or Reporter()
        self.log = self.reporter.log
        for adapter in (model, reranker):  # an adapter with its own bar (KaLM's rerank) draws through the reporter
            if adapter is not None and hasattr(adapter, "reporter"):
                adapter.reporter = self.reporter
        self.strategy = strategy_for(model, cache.root if cache is not None else None, self.reporter.bar)
        self.model_type = self.strategy.model_type
        self.model_config = dict(model.config()) if model_config is None else model_config
        self.reranker_config = (reranker_config if reranker_config is not None else
                                dict(reranker.config()) if reranker is not None else None)
        self.search_k = max(options.k_values)
        self.rerank_top_k = options.rerank_top_k if reranker is not None else None
        self.run_key = scoped_run_key(run_identity(self.model_config, self.reranker_config, self.rerank_top_k,
                                                   options.setting, options.k_values), options.scope, options.seed)
        self.store = (ResultsStore(options.output, name, options.setting, self.log)
                      if options.output is not None else None)
        self._warned_candidates: set[Path] = set()
        self._source_seen: str | None = None  # the mixed-data-source warning, once checked
        self.device = efficiency.device_of(model)
        self.parameters = efficiency.parameter_count(model)
        if options.setting == "w_inst" and not self.uses_instructions:
            self.log(f"note: {name} ignores instructions, so its w_inst results equal wo_inst")

    @property
    def uses_instructions(self) -> bool:
        """False when the model says so (BM25: ``uses_instructions = False``) and no reranker reads them."""
        return bool(getattr(self.model, "uses_instructions", True)) or self.reranker is not None

    # ------------------------------------------------------------------------------------- provenance
    def provenance(self) -> dict[str, Any]:
        """Dataset-level provenance (the ``lmeb`` block of the results file)."""
        return {
            "harness": HARNESS,
            "harness_version": __version__,
            "run_key": self.run_key,
            "model_kind": self.model_type,  # the file format's name for the model type
            "model_config": self.model_config,
            "reranker_config": self.reranker_config,
            "rerank_top_k": self.rerank_top_k,
            "similarity": getattr(self.model, "similarity", None),
            "uses_instructions": self.uses_instructions,
            "k_values": list(self.options.k_values),
            "search_k": self.search_k,
            "tie_rule": TIE_RULE,
            "candidates": CANDIDATES_RULE,
            "versions": library_versions(),
            **_cluster(self.model, self.reranker),
            **({"scope": self.options.scope, "seed": self.options.seed} if self.options.scope != POOL else {}),
        }

    def instruction(self, subset: SubsetData) -> str | None:
        """The subset's instruction in the w_inst setting (queries and rerankers get it), else None."""
        return setting_instruction(self.options.setting, subset.instruction)

    def model_counts(self) -> dict[str, dict[str, int]]:
        """Running counters of the models in use (``stats``: API requests and tokens, KaLM pairs...)."""
        out = {role: model_stats(model) for role, model in (("model", self.model), ("reranker", self.reranker))}
        return {role: stats for role, stats in out.items() if stats}

    def warn(self, summary: DatasetSummary, message: str) -> None:
        """A warning kept in the dataset's summary and logged."""
        summary.warnings.append(message)
        self.log(f"warning: {message}")

    # ------------------------------------------------------------------------------------------ search
    def search(self, subset: SubsetData, rows: Rows, seconds: dict[str, float]) -> Run:
        """The run of one subset (top ``search_k`` per query), timing each stage into ``seconds``."""
        instruction = self.instruction(subset)
        run = self.strategy.run(subset, rows, self.search_k, instruction, seconds)
        if self.reranker is not None:
            from lmeb.engine.rerank import rerank

            with timed(seconds, "rerank"):
                run = rerank(subset, run, self.reranker, self.options.rerank_top_k, instruction)
        return run

    # -------------------------------------------------------------------------------------------- run
    def run(self, selections: list[Selection]) -> list[DatasetSummary]:
        """Every selected dataset's summary, its results in memory (and on disk with an output)."""
        if self.store is not None:
            self.store.check_writable()
        self.strategy.prepare(self, selections)  # a hybrid with auto weights: its tuning pass
        return [self.run_dataset(sel.task, sel.subsets) for sel in selections]

    def run_dataset(self, task: Task, subsets: tuple[str, ...] | list[str]) -> DatasetSummary:
        """Evaluate ``subsets`` of ``task``; with an output, the results file is rewritten after each subset."""
        started = time.perf_counter()
        summary = DatasetSummary(task.name, len(subsets), model=self.name)
        done = (self.store.previous(task, self.run_key, self.options.overwrite, summary.warnings, subsets)
                if self.store is not None else {})
        self.strategy.new_dataset()
        efficiency.reset_gpu_peak(self.device)
        reader = open_reader(task, self.root)
        written = None
        bar = self.reporter.bar(total=len(subsets), desc=task.name, unit="subset")
        try:
            for name in subsets:
                written = self.run_subset(task, reader, name, done, summary, bar) or written
                bar.update(1)
        finally:
            bar.close()
        summary.result = self._dataset_result(task, done, written)
        summary.seconds = time.perf_counter() - started
        return summary

    def _dataset_result(self, task: Task, done: dict[str, SubsetResult],
                        written: DatasetResult | None) -> DatasetResult | None:
        """The dataset's results now: what the store last wrote, the file resumed from when nothing ran, or
        (no output) the subsets assembled in memory."""
        if not done:
            return None
        if self.store is None:
            return assemble(self.name, self.options.setting, task, done, self.provenance())
        return written or self.store.held(task, done)

    def run_subset(self, task: Task, reader: Any, name: str, done: dict[str, SubsetResult],
                   summary: DatasetSummary, bar: Any) -> DatasetResult | None:
        """Load one subset, skip it when the kept result is current, else evaluate it into ``done`` (and write
        the dataset's file with an output: the ``DatasetResult`` written is returned)."""
        bar.set_postfix_str(f"{name}: load")
        seconds: dict[str, float] = {}
        with timed(seconds, "load"):
            subset = reader.load(name)
        fingerprint, files = data_fingerprint(subset.files, self.root / task.path)
        if ResultsStore.is_current(done.get(name), fingerprint, self.instruction(subset), self.options.overwrite):
            summary.subsets_skipped += 1
            return None
        check_evaluable(subset, self.root)
        bar.set_postfix_str(f"{name}: {self.strategy.steps}")
        result = self.evaluate_subset(subset, seconds, summary)
        synthetic = is_synthetic(self.root, subset)
        result.provenance.update(data_fingerprint=fingerprint, data_files=files, synthetic=synthetic,
                                 task_scope=self._scope(subset, summary),
                                 data_origin=data_origin(self.root, task, subset.files, self.manifest))
        if self.store is not None and self._source_seen is None:  # once per run, before its first write
            self._source_seen = mixed_source_warning(self.store.folder, synthetic) or ""  # (lmeb.results.identity)
            if self._source_seen:
                self.warn(summary, self._source_seen)
        done[name] = result
        summary.subsets_run += 1
        return self.store.write(task, done, self.provenance()) if self.store is not None else None

    def _scope(self, subset: SubsetData, summary: DatasetSummary) -> str:
        """The subset's task scope (``lmeb.results.identity``); a missing candidates file is warned once, by name."""
        scope, lacking = subset_scope(subset)
        if lacking is not None and lacking not in self._warned_candidates:
            self._warned_candidates.add(lacking)
            self.warn(summary, f"{lacking} is missing (the {subset.task.name} rule has candidates): its queries "
                               f"are ranked against the whole corpus, recorded as task scope '{scope}', not the "
                               "published task")
        return scope

    # ------------------------------------------------------------------------------------- one subset
    def evaluate_subset(self, subset: SubsetData, seconds: dict[str, float], summary: DatasetSummary) -> SubsetResult:
        """Search and score one loaded subset; its rankings go to the output (or stay in memory without one),
        its TREC run file too with ``save_runs``."""
        counts_before = self.model_counts()
        texts_before = self.strategy.texts
        with timed(seconds, "search"):
            rows, scope = scope_rows(subset, self.options.scope, self.options.seed)
        stage = "encode" if self.model_type == "encoder" else "search"
        stage_before = seconds.get(stage, 0.0)
        run = self.search(subset, rows, seconds)
        texts = self.strategy.texts - texts_before
        model_counts = {role: {k: v - counts_before.get(role, {}).get(k, 0) for k, v in stats.items()}
                        for role, stats in self.model_counts().items()}
        cost = self._cost(subset, texts, model_counts.get("model", {}), seconds.get(stage, 0.0) - stage_before)
        summary.texts += texts
        summary.model_counts = efficiency.add_counts(summary.model_counts, model_counts)
        no_candidates = self._warn_no_candidates(subset, rows, summary)
        with timed(seconds, "metrics"):
            evaluation = evaluate(subset.qrels, run, self.options.k_values)
        run_file, rankings, kept = self._keep_run(subset, run, seconds)
        query_ids = list(evaluation.per_query.get(MAIN_SCORE, {}))
        provenance = {
            "mteb_subset": subset.task.subset(subset.subset).mteb_name,
            "instruction": self.instruction(subset),
            "queries": len(subset.query_ids),
            "evaluated_queries": len(query_ids),
            "documents": len(subset.corpus),
            "queries_without_candidates": no_candidates,
            "texts": texts.as_dict(),
            "model_counts": model_counts or None,  # each model's stats delta: pairs, requests, tokens, indexes...
            "seconds": {k: round(v, 4) for k, v in seconds.items()},
            "efficiency": cost,  # the model's cost: texts, tokens, seconds, rates, peak memory (efficiency)
            "run_file": run_file,
            "rankings": rankings,
            **({"scope": scope} if self.options.scope != POOL else {}),  # what each query was ranked among
        }
        provenance.update(self.strategy.subset_provenance())  # a hybrid's auto weights per fold
        return SubsetResult(subset=subset.subset, scores=evaluation.scores, main_score=evaluation.main_score,
                            evaluation_time=round(sum(seconds.values()), 4), per_query=evaluation.columns(query_ids),
                            query_ids=query_ids, provenance=provenance, unranked=evaluation.unranked, rankings=kept)

    def _cost(self, subset: SubsetData, texts: EmbedStats, counts: dict[str, int], seconds: float) -> dict[str, Any]:
        """The model's cost on one subset (``lmeb.engine.efficiency``); a hybrid adds its parts' costs."""
        cost = efficiency.block(
            efficiency.model_texts(self.model_type, texts.encoded, counts, len(subset.corpus), len(subset.query_ids)),
            counts.get("tokens"), seconds, self.device, self.parameters, efficiency.peak_rss_mb(),
            efficiency.peak_gpu_mb(self.device))
        return self.strategy.efficiency(cost)  # a hybrid: its parts' costs + fusion_seconds

    def _warn_no_candidates(self, subset: SubsetData, rows: Rows, summary: DatasetSummary) -> int:
        """How many queries have no candidate document (they score 0); warned when any."""
        missing = sum(1 for r in rows if r is not None and r.shape[0] == 0)
        if missing:
            where = f"{subset.task.name}/{subset.subset}"
            self.warn(summary, f"{where}: none of its {len(rows)} queries has a candidate document in the corpus "
                               "(all score 0)" if missing == len(rows) else
                               f"{where}: {missing} of {len(rows)} queries have no candidate document in the corpus "
                               "(they score 0)")
        return missing

    def _keep_run(self, subset: SubsetData, run: Run,
                  seconds: dict[str, float]) -> tuple[str | None, dict[str, Any], dict[str, list] | None]:
        """(run file, rankings provenance, rankings held in memory): with an output the TREC run (``save_runs``)
        and the top ``DEPTH`` per query (``lmeb.results.rankings``) are written and nothing is held; without
        one the same rankings stay in memory for ``lmeb.Results.inspect``."""
        if self.store is None:
            return None, {"depth": DEPTH}, top_rankings(run)  # what the sidecar would hold, kept in memory
        run_file = None
        if self.options.save_runs:
            with timed(seconds, "write_run"):
                run_path, run_file = self.store.run_file(subset.task.name, subset.subset)
                write_trec(run, run_path, _tag(self.name))
        with timed(seconds, "write_rankings"):  # the top DEPTH per query, for lmeb inspect
            rankings = self.store.write_rankings(subset.task.name, subset.subset, run)
        return run_file, rankings, None


def _cluster(*models: Any) -> dict[str, Any]:
    """``{"cluster": ...}`` when a model runs on a worker pool (``lmeb.scale``: nodes, workers, throughput)."""
    for model in models:
        if callable(getattr(model, "provenance", None)):
            return {"cluster": model.provenance()}
    return {}


def _tag(name: str) -> str:
    return "".join("_" if c.isspace() else c for c in name.replace("/", "__")) or "lmeb"
