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

The runner only orchestrates: the model's retrieval strategy is chosen once (``lmeb.engine.strategy``), the
results files (resume rule, provenance, atomic writes) belong to ``lmeb.results.store.ResultsStore``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmeb import __version__
from lmeb.data.mteb_format import open_reader
from lmeb.data.origin import data_origin
from lmeb.data.reader import SubsetData, data_root, is_synthetic, subset_paths
from lmeb.embeddings.store import EmbedStats
from lmeb.engine import efficiency
from lmeb.engine.growth import POOL, scope_rows, scoped_run_key
from lmeb.engine.metrics import K_VALUES, MAIN_SCORE, evaluate
from lmeb.engine.retrieval import Rows, Run, write_trec
from lmeb.engine.strategy import model_stats, strategy_for, timed
from lmeb.errors import LmebError
from lmeb.results.dataset_result import SubsetResult
from lmeb.results.identity import mixed_source_warning, subset_scope
from lmeb.results.rankings import DEPTH, rankings_file, write_rankings
from lmeb.results.store import (
    CANDIDATES_RULE,
    HARNESS,
    TIE_RULE,
    ResultsStore,
    data_fingerprint,
    library_versions,
    run_identity,
)
from lmeb.tasks.registry import Selection, Task
from lmeb.tasks.settings import check_setting, setting_instruction


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
    scope: str = POOL  # which documents each query is ranked among (lmeb.engine.growth): pool, corpus or xN
    seed: int = 0  # the distractor draw's seed (scope xN), recorded in provenance


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
    # the models' counters over the subsets run now (kept ones cost nothing): {role: {counter: n}}, e.g.
    # {"model": {"requests": 412, "tokens": 1234567, "retries": 3}}; {} when no model keeps ``stats``
    model_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    subsets: dict[str, SubsetResult] = field(default_factory=dict)  # every subset now in the results file


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
    """Evaluates one model (plus an optional reranker) on selected datasets and writes results files.

    ``model_config``/``reranker_config`` default to the models' own ``config()`` (what keys the resume rule).
    """

    def __init__(self, model: Any, options: RunOptions, name: str, reranker: Any | None = None,
                 log: Callable[[str], None] | None = None, model_config: dict[str, Any] | None = None,
                 reranker_config: dict[str, Any] | None = None) -> None:
        check_setting(options.setting)
        self.model = model
        self.reranker = reranker
        self.options = options
        self.name = name
        self.root = data_root(options.data)
        self.log = log or (lambda message: print(message, file=sys.stderr))
        self.strategy = strategy_for(model, options.cache_dir, self._bar if options.progress else None)
        self.model_type = self.strategy.model_type
        self.model_config = dict(model.config()) if model_config is None else model_config
        self.reranker_config = (reranker_config if reranker_config is not None else
                                dict(reranker.config()) if reranker is not None else None)
        self.search_k = max(options.k_values)
        self.rerank_top_k = options.rerank_top_k if reranker is not None else None
        self.run_key = run_identity(self.model_config, self.reranker_config, self.rerank_top_k, options.setting,
                                    options.k_values)
        self.run_key = scoped_run_key(self.run_key, options.scope, options.seed)
        self.store = ResultsStore(options.output, name, options.setting, self.log)
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
        self.store.check_writable()
        self.strategy.prepare(self, selections)  # a hybrid with auto weights: its tuning pass
        return [self.run_dataset(sel.task, sel.subsets) for sel in selections]

    def run_dataset(self, task: Task, subsets: tuple[str, ...] | list[str]) -> DatasetSummary:
        """Evaluate ``subsets`` of ``task``; the results file is rewritten after each subset."""
        started = time.perf_counter()
        summary = DatasetSummary(task.name, len(subsets))
        path = self.store.path(task.name)
        done = self.store.previous(task, self.run_key, self.options.overwrite, summary.warnings, subsets)
        self.strategy.new_dataset()
        efficiency.reset_gpu_peak(self.device)
        reader = open_reader(task, self.root)
        bar = self._bar(total=len(subsets), desc=task.name, unit="subset") if self.options.progress else None
        try:
            for name in subsets:
                if bar is not None:
                    bar.set_postfix_str(f"{name}: load")
                seconds: dict[str, float] = {}
                with timed(seconds, "load"):
                    subset = reader.load(name)
                fingerprint, files = data_fingerprint(subset.files, self.root / task.path)
                if self.store.is_current(done.get(name), fingerprint, self.instruction(subset), self.options.overwrite):
                    summary.subsets_skipped += 1
                    if bar is not None:
                        bar.update(1)
                    continue
                check_evaluable(subset, self.root)
                if bar is not None:
                    bar.set_postfix_str(f"{name}: {self.strategy.steps}")
                result = self.evaluate_subset(subset, seconds, summary)
                scope, synthetic = self._scope(subset, summary), is_synthetic(self.root, subset)
                result.provenance.update(data_fingerprint=fingerprint, data_files=files, synthetic=synthetic,
                                         task_scope=scope, data_origin=data_origin(self.root, task, subset.files))
                if self._source_seen is None:  # once per run, before its first write (lmeb.results.identity)
                    self._source_seen = mixed_source_warning(self.store.folder, synthetic) or ""
                    if self._source_seen:
                        summary.warnings.append(self._source_seen)
                        self.log(f"warning: {self._source_seen}")
                done[name] = result
                summary.subsets_run += 1
                summary.path = self.store.write(task, done, self.provenance())
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
        summary.subsets = done
        summary.seconds = time.perf_counter() - started
        return summary

    def _scope(self, subset: SubsetData, summary: DatasetSummary) -> str:
        """The subset's task scope (``lmeb.results.identity``); a missing candidates file is warned once, by name."""
        scope, lacking = subset_scope(subset)
        if lacking is not None and lacking not in self._warned_candidates:
            self._warned_candidates.add(lacking)
            message = (f"{lacking} is missing (the {subset.task.name} rule has candidates): its queries are ranked "
                       f"against the whole corpus, recorded as task scope '{scope}', not the published task")
            summary.warnings.append(message)
            self.log(f"warning: {message}")
        return scope

    def evaluate_subset(self, subset: SubsetData, seconds: dict[str, float], summary: DatasetSummary) -> SubsetResult:
        """Search and score one loaded subset (writes its TREC run file with ``save_runs``)."""
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
        counts = model_counts.get("model", {})
        cost = efficiency.block(
            efficiency.model_texts(self.model_type, texts.encoded, counts, len(subset.corpus), len(subset.query_ids)),
            counts.get("tokens"), seconds.get(stage, 0.0) - stage_before, self.device, self.parameters,
            efficiency.peak_rss_mb(), efficiency.peak_gpu_mb(self.device))
        cost = self.strategy.efficiency(cost)  # a hybrid: its parts' costs + fusion_seconds
        summary.texts += texts
        summary.model_counts = efficiency.add_counts(summary.model_counts, model_counts)
        no_candidates = sum(1 for r in rows if r is not None and r.shape[0] == 0)
        if no_candidates:
            where = f"{subset.task.name}/{subset.subset}"
            message = (f"{where}: none of its {len(rows)} queries has a candidate document in the corpus (all score 0)"
                       if no_candidates == len(rows) else
                       f"{where}: {no_candidates} of {len(rows)} queries have no candidate document in the corpus "
                       "(they score 0)")
            summary.warnings.append(message)
            self.log(f"warning: {message}")
        with timed(seconds, "metrics"):
            evaluation = evaluate(subset.qrels, run, self.options.k_values)
        run_file = None
        if self.options.save_runs:
            with timed(seconds, "write_run"):
                run_path, run_file = self.store.run_file(subset.task.name, subset.subset)
                write_trec(run, run_path, _tag(self.name))
        with timed(seconds, "write_rankings"):  # the top DEPTH per query, for lmeb inspect (lmeb.results.rankings)
            rank_path, rank_file = rankings_file(self.store.path(subset.task.name), subset.subset)
            rankings = {"file": rank_file, "sha256": write_rankings(run, rank_path), "depth": DEPTH}
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
            "model_counts": model_counts or None,  # each model's stats delta: pairs, requests, tokens, indexes...
            "seconds": {k: round(v, 4) for k, v in seconds.items()},
            "efficiency": cost,  # the model's cost: texts, tokens, seconds, rates, peak memory (efficiency)
            "run_file": run_file,
            "rankings": rankings,
            **({"scope": scope} if self.options.scope != POOL else {}),  # what each query was ranked among
        }
        provenance.update(self.strategy.subset_provenance())  # a hybrid's auto weights per fold
        return SubsetResult(subset=subset.subset, scores=evaluation.scores, main_score=evaluation.main_score,
                            evaluation_time=total, per_query=per_query, query_ids=query_ids, provenance=provenance,
                            unranked=evaluation.unranked)


def _cluster(*models: Any) -> dict[str, Any]:
    """``{"cluster": ...}`` when a model runs on a worker pool (``lmeb.scale``: nodes, workers, throughput)."""
    for model in models:
        if callable(getattr(model, "provenance", None)):
            return {"cluster": model.provenance()}
    return {}


def _mean(values: Any) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _tag(name: str) -> str:
    return "".join("_" if c.isspace() else c for c in name.replace("/", "__")) or "lmeb"
