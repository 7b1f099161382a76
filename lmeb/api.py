"""``lmeb.evaluate``: run any model on LMEB from Python; ``lmeb run`` is a thin layer over it.

``model`` is a spec string as on the command line (``bm25``, a sentence-transformers path or hub id,
``hf:PATH``, ``kalm:PATH``...), an object with ``encode(texts, kind, instruction)`` (lmeb's Encoder
protocol), a Searcher or a Reranker, a ``sentence_transformers.SentenceTransformer`` or ``CrossEncoder``
instance, or a plain callable ``list[str] -> array`` (``lmeb.models.objects``). Results come back in
memory (``lmeb.Results``); with ``output=`` they are also written as they go, with resume, exactly as
``lmeb run`` writes them (and never read back); without it nothing is written.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lmeb.cache import DEFAULT_CACHE, Cache
from lmeb.engine.options import EvalOptions, RunOptions, Scale
from lmeb.engine.runner import Runner
from lmeb.errors import LmebError
from lmeb.models.naming import RERANK_JOINER, default_name
from lmeb.reporter import Reporter
from lmeb.results.collection import Results


def select_present(tasks: str | Sequence[str] | None, types: Sequence[str] | None, root: Path,
                   log: Callable[[str], None]) -> list:
    """The selected datasets present under ``root``; naming an absent one in ``tasks`` is an error."""
    from lmeb.data.reader import available_tasks, present_selections
    from lmeb.tasks.registry import select

    spec = ",".join(tasks) if isinstance(tasks, (list, tuple)) else tasks
    selections = select(spec, list(types) if types else None)
    return present_selections(root, selections, bool(spec), lambda line: log(f"lmeb run: {line}"), available_tasks)


def _is_spec(spec_or_obj: Any, options: dict[str, Any]) -> bool:
    return isinstance(spec_or_obj, (str, Path)) or (spec_or_obj is None and bool(options.get("preset")))


def _load(spec_or_obj: Any, role: str, setting: str, cache: Cache | None, name: str | None,
          revision: str | None, options: dict[str, Any], pool: Any = None) -> tuple[Any, dict[str, Any], str, bool]:
    """(model, config, name, anonymous) for a spec string (loaded here, or on ``pool``'s workers) or an object."""
    from lmeb.models.objects import wrap_model
    from lmeb.models.registry import load_model, load_reranker

    if _is_spec(spec_or_obj, options):
        spec = None if spec_or_obj is None else str(spec_or_obj)
        if pool is not None:
            model = pool.reranker if role == "reranker" else pool.model
        elif role == "reranker":
            model = load_reranker(spec, cache=cache, **options)
        else:
            model = load_model(spec, setting=setting, cache=cache, **options)
        label = name or default_name(spec, model, options.get("preset"))
        return model, dict(model.config()), label, False
    if options:
        raise LmebError(f"model options ({', '.join(sorted(options))}) apply to spec strings only, not to a "
                        f"{type(spec_or_obj).__name__} object")
    wrapped = wrap_model(spec_or_obj, name=name, revision=revision, role=role)
    return wrapped.model, wrapped.config, wrapped.name, wrapped.anonymous


def _ray_pool(model: Any, reranker: Any, setting: str, cache: Cache | None, model_options: dict[str, Any],
              reranker_options: dict[str, Any], scale: Scale) -> Any:
    """A ``lmeb.scale.pool.RayPool`` whose workers each load ``model`` (and ``reranker``) from its spec."""
    from lmeb.scale.pool import RayPool
    from lmeb.scale.worker import ModelSpec

    if not _is_spec(model, model_options) or (reranker is not None and not _is_spec(reranker, reranker_options)):
        raise LmebError("a Scale takes model specs (strings): each Ray worker loads its own replica from the spec")
    if str(model).lower().startswith("hybrid:"):
        raise LmebError("a hybrid: model does not run on Ray: run its parts on Ray first, then the hybrid from "
                        "their cache (it encodes nothing new)")
    return RayPool(ModelSpec(None if model is None else str(model),
                             {"setting": setting, "cache": cache, **model_options}),
                   ModelSpec(str(reranker), {"cache": cache, **reranker_options}, "reranker")
                   if reranker is not None else None, address=scale.address, **scale.sizing())


def evaluate(
    model: Any,
    tasks: str | Sequence[str] | None = None,
    data: str | Path | None = None,
    setting: str = "wo_inst",
    *,
    reranker: Any | None = None,
    output: str | Path | None = None,
    cache_dir: str | Path | Cache | None = DEFAULT_CACHE,
    name: str | None = None,
    revision: str | None = None,
    model_options: dict[str, Any] | None = None,
    options: EvalOptions | None = None,
    reporter: Reporter | None = None,
) -> Results:
    """Evaluate ``model`` (and an optional second-stage ``reranker``) on LMEB; returns ``Results``.

    ``tasks``: ``"LoCoMo,Gorilla/gorilla_tensor"`` or a list (None = every dataset present, or those of
    ``options.types``); ``data``: the data root (default ``$LMEB_DATA``); ``setting``: ``wo_inst``/``w_inst``.
    ``output``: also write the results files there as each subset finishes (and keep the subsets already
    there for the same configuration unless ``options.overwrite``); None keeps them in memory only and
    writes nothing at all.
    ``cache_dir``: the embedding cache folder or a ``lmeb.cache.Cache`` (default ``$LMEB_CACHE``
    or ``~/.cache/lmeb``; None = off).
    ``name``/``revision``: the model's name (results folder) and version; for an object without
    ``config()`` they key the cache and resume, which are off (with a warning) when no ``name`` is given.
    ``model_options`` go to the spec loader (``device``, ``batch_size``, ``preset``, ``model_path``...).
    ``options``: the less common choices (``lmeb.engine.options.EvalOptions``: memory types, reranking
    depth and reranker options, overwrite, TREC runs, growth scopes, data download, ``Scale`` for Ray).
    ``reporter``: log lines and progress bars (``lmeb.reporter.Reporter``; default stderr lines, no bars).
    With no ``data`` and no ``$LMEB_DATA``, the selected datasets are fetched into ``~/.cache/lmeb/data``
    first (``lmeb.data.hub.fetch_for_run``) unless ``options.download`` is False.
    """
    from lmeb.engine.growth import scoped_name

    opts = options or EvalOptions()
    reporter = reporter or Reporter()
    if data is None and not os.environ.get("LMEB_DATA"):
        from lmeb.data.hub import fetch_for_run
        from lmeb.data.reader import available_tasks

        data = fetch_for_run(tasks, opts.types, opts.download, reporter.log, available_tasks, opts.source,
                             reporter.bars)
    run = RunOptions(data=data, output=output, setting=setting, overwrite=opts.overwrite, save_runs=opts.save_runs,
                     rerank_top_k=opts.rerank_top_k, seed=opts.seed)
    selections = select_present(tasks, opts.types, run.data, reporter.log)
    cache = Cache.of(cache_dir)
    pool = (_ray_pool(model, reranker, setting, cache, dict(model_options or {}), dict(opts.reranker_options),
                      opts.scale) if opts.scale is not None else None)
    with pool if pool is not None else contextlib.nullcontext():  # the workers end with the run, Ctrl-C included
        first, config, label, anonymous = _load(model, "model", setting, cache, name, revision,
                                                dict(model_options or {}), pool)
        second = second_config = None
        if reranker is not None:
            second, second_config, rr_label, rr_anonymous = _load(reranker, "reranker", setting, cache, None,
                                                                   None, dict(opts.reranker_options), pool)
            anonymous = anonymous or rr_anonymous
            if name is None:
                label = f"{label}{RERANK_JOINER}{rr_label}"
        if anonymous:
            reporter.log(f"warning: {label} has no config() and no name= was given, so the embedding cache and "
                         "resume are off for it (pass name= and revision= to key them)")
            cache, run = None, replace(run, overwrite=True)
        started = time.perf_counter()
        summaries = []
        for scope in opts.scopes:  # one run, and one results name, per scope (a growth run: bm25@x4...)
            runner = Runner(first, replace(run, scope=scope), scoped_name(label, scope), reranker=second,
                            cache=cache, reporter=reporter, model_config=config, reranker_config=second_config)
            summaries += runner.run(selections)
    datasets = [s.result for s in summaries if s.result is not None]  # in memory: nothing is read back
    return Results(datasets, name=label, setting=setting, summaries=summaries, seconds=time.perf_counter() - started)
