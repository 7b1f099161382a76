"""Hybrid retrieval: several models (BM25, encoders, rerankers, other hybrids) fused into one model.

``Hybrid([part, ...], fusion="rrf", weights=None, rrf_k=60, depth=1000)`` is a model like any other
(``lmeb.evaluate(lmeb.Hybrid(["bm25", encoder]))``; ``lmeb run --model "hybrid:bm25+PATH"``). Per
subset, each part runs through its own strategy (``lmeb.engine.strategy``) exactly as it would alone, within
the query's candidates, with its own embedding cache (a hybrid of parts already run encodes nothing),
keeping its top ``depth``; then ``lmeb.engine.fusion`` fuses the lists per query and ``lmeb.ordering.top_k``
ranks them with the one tie rule. A reranker can follow (the engine reranks whatever run it gets).

Identity: ``config()`` names every part's ``config()``, the fusion method, weights, ``rrf_k`` and
``depth``, so resume, the cache and tables tell any two hybrids apart. The default name is folder-safe:
``hybrid_<part>__<part>_<fusion>`` (``+``, ``>``, ``/`` never appear).

Efficiency: the subset's ``efficiency`` block sums the parts' own costs (texts, tokens, model seconds)
plus the fusion, and adds ``fusion_seconds`` and a ``parts`` list with each part's block.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmeb.embeddings.store import EmbedStats
from lmeb.engine import efficiency
from lmeb.engine.fusion import DEFAULT_RRF_K, check_method, check_weights, fuse_runs
from lmeb.engine.hybrid_cv import FOLDS
from lmeb.engine.retrieval import Rows, Run
from lmeb.engine.strategy import Strategy, strategy_for, timed
from lmeb.errors import LmebError
from lmeb.models.base import model_stats, stats_since
from lmeb.ordering import DEFAULT_K, DocIndex
from lmeb.results.dataset_result import model_dir_name

if TYPE_CHECKING:
    from lmeb.data.reader import SubsetData

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def part_label(name: str) -> str:
    """A part's name inside the hybrid's folder-safe name: the results folder rule (``org/m`` -> ``org__m``,
    ``lmeb.results.dataset_result.model_dir_name``), then anything outside ``[A-Za-z0-9._-]`` -> ``_``."""
    return _UNSAFE.sub("_", model_dir_name(str(name))).strip("_") or "model"


def _part(part: Any, options: dict[str, Any]) -> tuple[Any, str]:
    """(model, name) for a spec string or an object (an object needs an identity: ``config()`` or a name)."""
    from lmeb.models.naming import default_name
    from lmeb.models.objects import wrap_model
    from lmeb.models.registry import is_bm25_spec, load_model

    if isinstance(part, (str, Path)):
        spec = str(part).strip()
        model = load_model(spec, **({} if is_bm25_spec(spec) else options))
        return model, default_name(spec, model)
    wrapped = wrap_model(part)
    if wrapped.anonymous:
        raise LmebError(f"hybrid part {type(part).__name__} has no config() and no name: a hybrid needs every "
                        "part's identity (give it a config() method, or pass the part as a spec string)")
    return wrapped.model, wrapped.name


class Hybrid:
    """A model made of ``parts`` whose per-query lists are fused (see the module docstring)."""

    model_type = "hybrid"

    def __init__(self, parts: Sequence[Any], fusion: str = "rrf", weights: Sequence[float] | str | None = None,
                 rrf_k: int = DEFAULT_RRF_K, depth: int = DEFAULT_K, name: str | None = None,
                 model_options: dict[str, Any] | None = None, cv_folds: int = FOLDS, cv_seed: int = 0) -> None:
        if isinstance(parts, (str, Path)) or len(parts) < 2:
            raise LmebError("a hybrid needs at least two parts, e.g. Hybrid(['bm25', encoder])")
        self.fusion = check_method(fusion)
        self.auto = isinstance(weights, str) and weights.lower() == "auto"  # lmeb.engine.hybrid_cv
        if isinstance(weights, str) and not self.auto:
            raise LmebError(f"fusion weights are numbers or 'auto', got {weights!r}")
        self.weights = check_weights(None if self.auto else weights, self.fusion, len(parts))
        if cv_folds < 2:
            raise LmebError(f"cross-validation needs at least 2 folds, got {cv_folds}")
        self.cv_folds, self.cv_seed = int(cv_folds), int(cv_seed)
        if int(rrf_k) < 0 or int(depth) < 1:
            raise LmebError(f"rrf_k must be >= 0 and depth >= 1, got rrf_k={rrf_k}, depth={depth}")
        self.rrf_k, self.depth = int(rrf_k), int(depth)
        loaded = [_part(p, dict(model_options or {})) for p in parts]
        self.parts = [model for model, _ in loaded]
        self.part_names = [label for _, label in loaded]
        self.name = name or self.default_name(weights is not None)
        self.uses_instructions = any(bool(getattr(p, "uses_instructions", True)) for p in self.parts)
        devices = [str(efficiency.device_of(p)) for p in self.parts]
        self.device = next((d for d in devices if d != "cpu"), "cpu")

    def default_name(self, weighted: bool) -> str:
        """``hybrid_bm25__all-MiniLM-L6-v2_rrf`` (+ ``_w0.3-0.7``, ``_k20``, ``_d100`` when not the defaults)."""
        name = "hybrid_" + "__".join(part_label(n) for n in self.part_names) + "_" + self.fusion
        if self.auto:
            name += "_cv"
        elif weighted:
            name += "_w" + "-".join(f"{w:g}" for w in self.weights)
        if self.fusion == "rrf" and self.rrf_k != DEFAULT_RRF_K:
            name += f"_k{self.rrf_k}"
        if self.depth != DEFAULT_K:
            name += f"_d{self.depth}"
        return name

    def config(self) -> dict[str, Any]:
        from lmeb.engine.hybrid_cv import GRID_STEP, METRIC

        cv = {"cv": {"folds": self.cv_folds, "seed": self.cv_seed, "grid_step": GRID_STEP, "metric": METRIC}}
        return {"class": "Hybrid", "fusion": self.fusion,
                "weights": "auto" if self.auto else list(self.weights), "rrf_k": self.rrf_k, "depth": self.depth,
                "parts": [{"name": n, "config": dict(p.config())} for n, p in zip(self.part_names, self.parts,
                                                                                   strict=True)],
                **(cv if self.auto else {})}

    @property
    def stats(self) -> dict[str, int]:
        """The parts' counters summed (requests, tokens, corpora indexed...)."""
        return efficiency.add_counts(*({"m": model_stats(p)} for p in self.parts)).get("m", {})

    def retrieval(self, cache_dir: Path | None, progress: Callable[..., Any] | None) -> HybridRetrieval:
        """The engine's strategy for this model (``lmeb.engine.strategy.strategy_for`` asks for it)."""
        return HybridRetrieval(self, cache_dir, progress)


class HybridRetrieval(Strategy):
    """Hybrid path: each part's own strategy to depth ``depth``, then per-query fusion."""

    model_type = "hybrid"
    steps = "parts + fusion"

    def __init__(self, hybrid: Hybrid, cache_dir: Path | None, progress: Callable[..., Any] | None) -> None:
        self.hybrid = hybrid
        self.parts = [strategy_for(p, cache_dir, progress) for p in hybrid.parts]
        self.last: dict[str, Any] = {}
        self.chosen: dict[str, list[list[float]]] | None = None  # auto weights: memory type -> weights per fold

    def prepare(self, runner: Any, selections: list) -> None:
        """Before the run (the engine calls it): with auto weights, the cross-validation pass."""
        if self.hybrid.auto:
            from lmeb.engine.hybrid_cv import tune

            self.chosen = tune(self, runner, selections)

    @property
    def texts(self) -> EmbedStats:
        total = EmbedStats()
        for part in self.parts:
            total = total + part.texts
        return total

    def new_dataset(self) -> None:
        for part in self.parts:
            part.new_dataset()

    def run(self, subset: SubsetData, rows: Rows, k: int, instruction: str | None, seconds: dict[str, float]) -> Run:
        runs, blocks = [], []
        for model, strategy, name in zip(self.hybrid.parts, self.parts, self.hybrid.part_names, strict=True):
            inner: dict[str, float] = {}
            texts_before, counts_before = strategy.texts, model_stats(model)
            runs.append(strategy.run(subset, rows, self.hybrid.depth, instruction, inner))
            for stage, spent in inner.items():
                seconds[stage] = seconds.get(stage, 0.0) + spent
            blocks.append(self._part_block(name, model, strategy, inner, strategy.texts - texts_before,
                                           counts_before, subset))
        fusion: dict[str, float] = {}
        with timed(fusion, "fusion"):
            run = self._fuse(subset, runs, k) if self.hybrid.auto else fuse_runs(
                subset, runs, self.hybrid.fusion, self.hybrid.weights, self.hybrid.rrf_k, k)
        seconds["fusion"] = seconds.get("fusion", 0.0) + fusion["fusion"]
        self.last = {**self.last, "fusion_seconds": fusion["fusion"], "parts": blocks}
        return run

    def _fuse(self, subset: SubsetData, runs: list[Run], k: int) -> Run:
        """Auto weights: each fold's queries fused with the weights tuned on the other folds (lmeb.engine.hybrid_cv)."""
        from lmeb.engine.hybrid_cv import fold_of

        if self.chosen is None or subset.task.memory_type not in self.chosen:
            raise LmebError(f"{subset.task.name}: auto fusion weights were not tuned for "
                            f"{subset.task.memory_type} (run the hybrid through lmeb.evaluate or lmeb run)")
        chosen = self.chosen[subset.task.memory_type]
        h = self.hybrid
        folds: dict[int, list[str]] = {}
        for qid in subset.query_ids:
            folds.setdefault(fold_of(h.cv_seed, subset.task.name, subset.subset, qid, h.cv_folds), []).append(qid)
        merged: Run = {}
        index = DocIndex.of(subset.corpus.ids)  # once for the subset's folds
        for f, qids in folds.items():
            merged.update(fuse_runs(subset, runs, h.fusion, chosen[f], h.rrf_k, k, index=index, query_ids=qids))
        self.last = {"fusion_cv": {"memory_type": subset.task.memory_type, "weights_per_fold": chosen}}
        return {qid: merged[qid] for qid in subset.query_ids}

    def subset_provenance(self) -> dict[str, Any]:
        """What the subset's provenance records beside the efficiency block: auto weights chosen per fold."""
        return {"fusion_cv": self.last["fusion_cv"]} if "fusion_cv" in self.last else {}

    def _part_block(self, name: str, model: Any, strategy: Any, inner: dict[str, float], texts: EmbedStats,
                    counts_before: dict[str, int], subset: SubsetData) -> dict[str, Any]:
        counts = stats_since(model, counts_before)
        if isinstance(strategy, HybridRetrieval):
            block = strategy.efficiency(efficiency.block(None, None, 0.0, "cpu", None))
        else:
            stage = "encode" if strategy.model_type == "encoder" else "search"
            block = efficiency.block(
                efficiency.model_texts(strategy.model_type, texts.encoded, counts, len(subset.corpus),
                                       len(subset.query_ids)),
                counts.get("tokens"), inner.get(stage, 0.0), efficiency.device_of(model),
                efficiency.parameter_count(model))
        return {"name": name, "encoded": texts.encoded,
                **{key: block[key] for key in ("texts", "tokens", "seconds", "device", "parameters")}}

    def efficiency(self, cost: dict[str, Any]) -> dict[str, Any]:
        """The subset's ``efficiency`` block: the parts' costs summed plus the fusion (``cost`` gives peaks)."""
        parts = self.last.get("parts", [])
        fusion_seconds = float(self.last.get("fusion_seconds", 0.0))
        texts = [p["texts"] for p in parts if p.get("texts") is not None]
        tokens = [p["tokens"] for p in parts if p.get("tokens") is not None]
        block = efficiency.block(sum(texts) if texts else None, sum(tokens) if tokens else None,
                                 sum(p["seconds"] for p in parts) + fusion_seconds, cost.get("device", "cpu"),
                                 cost.get("parameters"), cost.get("peak_rss_mb"), cost.get("peak_gpu_mb"))
        return {**block, "fusion_seconds": round(fusion_seconds, 4), "parts": parts}


def load_hybrid(spec: str, options: dict[str, Any]) -> Hybrid:
    """The ``hybrid:`` prefix's loader (``lmeb.models.registry`` names it ``lmeb.engine.hybrid:load_hybrid``):
    ``hybrid:bm25+PATH`` (the text after ``hybrid:``) with the fusion options and the model options."""
    return hybrid_from_spec(spec, **{k: v for k, v in options.items() if v is not None})


def hybrid_from_spec(spec: str, *, fusion: str = "rrf", fusion_weights: str | Sequence[float] | None = None,
                     rrf_k: int | None = None, fusion_depth: int | None = None, **options: Any) -> Hybrid:
    """``bm25+PATH`` as a ``Hybrid``; ``options`` (with ``setting``/``cache``) go to each non-BM25 part."""
    parts = [p.strip() for p in spec.split("+")]
    if len(parts) < 2 or not all(parts):
        raise LmebError(f"hybrid:{spec}: give two or more parts joined by '+', e.g. hybrid:bm25+PATH")
    return Hybrid(parts, fusion=fusion, weights=parse_weights(fusion_weights),
                  rrf_k=DEFAULT_RRF_K if rrf_k is None else rrf_k, depth=DEFAULT_K if fusion_depth is None else
                  fusion_depth, model_options=options)


def parse_weights(weights: str | Sequence[float] | None) -> list[float] | str | None:
    """``"0.3,0.7"`` -> [0.3, 0.7]; a list as floats; None stays None (the defaults); ``auto`` stays."""
    if isinstance(weights, str) and weights.strip().lower() == "auto":
        return "auto"
    if weights is None or not isinstance(weights, str):
        return None if weights is None else [float(w) for w in weights]
    try:
        return [float(w) for w in weights.split(",")]
    except ValueError:
        raise LmebError(f"--fusion-weights takes numbers separated by commas (e.g. 0.3,0.7), got {weights!r}") \
            from None
