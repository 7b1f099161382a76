"""``lmeb.evaluate``: run any model on LMEB from Python; ``lmeb run`` is a thin layer over it.

``model`` is a spec string as on the command line (``bm25``, a sentence-transformers path or hub id,
``hf:PATH``, ``kalm:PATH``...), an object with ``encode(texts, kind, instruction)`` (lmeb's Encoder
protocol), a Searcher or a Reranker, a ``sentence_transformers.SentenceTransformer`` or ``CrossEncoder``
instance, or a plain callable ``list[str] -> array`` (``lmeb.models.objects``). Results come back in
memory (``lmeb.Results``); with ``output=`` they are also written as they go, with resume, exactly as
``lmeb run`` writes them.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lmeb.errors import LmebError
from lmeb.models.naming import RERANK_JOINER, default_name
from lmeb.results.collection import Results
from lmeb.results.dataset_result import read_dataset_result
from lmeb.tasks.settings import check_setting

DEFAULT_CACHE = "default"  # cache_dir's default: $LMEB_CACHE or ~/.cache/lmeb
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


def _load(spec_or_obj: Any, role: str, setting: str, cache_dir: Path | None, name: str | None,
          revision: str | None, options: dict[str, Any], pool: Any = None) -> tuple[Any, dict[str, Any], str, bool]:
    """(model, config, name, anonymous) for a spec string (loaded here, or on ``pool``'s workers) or an object."""
    from lmeb.models.objects import wrap_model
    from lmeb.models.registry import load_model, load_reranker

    if _is_spec(spec_or_obj, options):
        spec = None if spec_or_obj is None else str(spec_or_obj)
        if pool is not None:
            model = pool.reranker if role == "reranker" else pool.model
        elif role == "reranker":
            model = load_reranker(spec, cache_root=cache_dir, **options)
        else:
            model = load_model(spec, setting=setting, cache_root=cache_dir, **options)
        label = name or default_name(spec, model, options.get("preset"))
        return model, dict(model.config()), label, False
    if options:
        raise LmebError(f"model options ({', '.join(sorted(options))}) apply to spec strings only, not to a "
                        f"{type(spec_or_obj).__name__} object")
    wrapped = wrap_model(spec_or_obj, name=name, revision=revision, role=role)
    return wrapped.model, wrapped.config, wrapped.name, wrapped.anonymous


def _ray_pool(model: Any, reranker: Any, setting: str, cache_dir: Path | None, model_options: dict[str, Any],
              reranker_options: dict[str, Any], address: str, **sizing: Any) -> Any:
    """A ``lmeb.scale.pool.RayPool`` whose workers each load ``model`` (and ``reranker``) from its spec."""
    from lmeb.scale.pool import RayPool
    from lmeb.scale.worker import ModelSpec

    if not _is_spec(model, model_options) or (reranker is not None and not _is_spec(reranker, reranker_options)):
        raise LmebError("ray= takes model specs (strings): each Ray worker loads its own replica from the spec")
    if str(model).lower().startswith("hybrid:"):
        raise LmebError("a hybrid: model does not run on Ray: run its parts with ray= first, then the hybrid from "
                        "their cache (it encodes nothing new)")
    return RayPool(ModelSpec(None if model is None else str(model),
                             {"setting": setting, "cache_root": cache_dir, **model_options}),
                   ModelSpec(str(reranker), {"cache_root": cache_dir, **reranker_options}, "reranker")
                   if reranker is not None else None, address=address, **sizing)


def evaluate(
    model: Any,
    tasks: str | Sequence[str] | None = None,
    data: str | Path | None = None,
    setting: str = "wo_inst",
    *,
    types: Sequence[str] | None = None,
    reranker: Any | None = None,
    rerank_top_k: int = 100,
    output: str | Path | None = None,
    cache_dir: str | Path | None = DEFAULT_CACHE,
    name: str | None = None,
    revision: str | None = None,
    overwrite: bool = False,
    save_runs: bool = False,
    progress: bool = False,
    model_options: dict[str, Any] | None = None,
    reranker_options: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
    ray: str | None = None,
    workers: int | None = None,
    gpus_per_worker: float | None = None,
    cpus_per_worker: float | None = None,
    download: bool = True,
    source: str = "official",
    scope: str = "pool",
    distractors: Sequence[int] | None = None,
    seed: int = 0,
) -> Results:
    """Evaluate ``model`` (and an optional second-stage ``reranker``) on LMEB; returns ``Results``.

    ``tasks``: ``"LoCoMo,Gorilla/gorilla_tensor"`` or a list (None = every dataset present, or those of
    ``types``); ``data``: the data root (default ``$LMEB_DATA``); ``setting``: ``wo_inst``/``w_inst``.
    ``output``: also write the results files there as each subset finishes (and keep the subsets already
    there for the same configuration unless ``overwrite``); None keeps them in memory only.
    ``cache_dir``: the embedding cache (default ``$LMEB_CACHE`` or ``~/.cache/lmeb``; None = off).
    ``name``/``revision``: the model's name (results folder) and version; for an object without
    ``config()`` they key the cache and resume, which are off (with a warning) when no ``name`` is given.
    ``model_options`` go to the spec loader (``device``, ``batch_size``, ``preset``, ``model_path``...).
    ``ray``: ``"auto"`` (``$RAY_ADDRESS`` or a local instance) or a cluster address: the model and the
    reranker run on Ray workers, one replica each (``lmeb.scale``; spec strings only), sized by
    ``workers``/``gpus_per_worker``/``cpus_per_worker``; same numbers, same cache.
    With no ``data`` and no ``$LMEB_DATA``, the selected datasets are fetched into ``~/.cache/lmeb/data``
    first (``lmeb.data.hub.fetch_for_run``; ``source="mteb"``: mteb's copies) unless ``download=False``.
    """
    from lmeb.data.reader import data_root
    from lmeb.embeddings.store import default_cache_dir
    from lmeb.engine.growth import scoped_name, scopes_of
    from lmeb.engine.runner import Runner, RunOptions

    check_setting(setting)
    scopes = scopes_of(scope, list(distractors or []))
    if rerank_top_k < 1:
        raise LmebError("rerank_top_k must be at least 1")
    say = log or (lambda message: print(message, file=sys.stderr))
    if data is None and not os.environ.get("LMEB_DATA"):
        from lmeb.data.hub import fetch_for_run
        from lmeb.data.reader import available_tasks

        data = fetch_for_run(tasks, types, download, say, available_tasks, source, progress)
    root = data_root(data)
    selections = select_present(tasks, types, root, say)
    cache = default_cache_dir() if cache_dir == DEFAULT_CACHE else (Path(cache_dir).expanduser() if cache_dir else None)

    pool = _ray_pool(model, reranker, setting, cache, dict(model_options or {}), dict(reranker_options or {}), ray,
                     workers=workers, gpus_per_worker=gpus_per_worker, cpus_per_worker=cpus_per_worker) if ray else None
    with pool if pool is not None else contextlib.nullcontext():  # the workers end with the run, Ctrl-C included
        first, config, label, anonymous = _load(model, "model", setting, cache, name, revision,
                                                dict(model_options or {}), pool)
        second = second_config = None
        if reranker is not None:
            second, second_config, rr_label, rr_anonymous = _load(reranker, "reranker", setting, cache, None, None,
                                                                   dict(reranker_options or {}), pool)
            anonymous = anonymous or rr_anonymous
            if name is None:
                label = f"{label}{RERANK_JOINER}{rr_label}"
        if anonymous:
            say(f"warning: {label} has no config() and no name= was given, so the embedding cache and resume are off "
                "for it (pass name= and revision= to key them)")
            cache, overwrite = None, True

        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="lmeb-results-") as scratch:
            out = Path(output).expanduser() if output is not None else Path(scratch)
            summaries = []
            for each in scopes:
                options = RunOptions(data=root, output=out, setting=setting, overwrite=overwrite, save_runs=save_runs,
                                     rerank_top_k=rerank_top_k, cache_dir=cache, progress=progress, scope=each,
                                     seed=seed)
                runner = Runner(first, options, scoped_name(label, each), reranker=second, log=say,
                                model_config=config, reranker_config=second_config)
                summaries += runner.run(selections)
            datasets = [read_dataset_result(s.path, per_query=True) for s in summaries if s.path is not None]
            if output is None:
                from lmeb.inspect.queries import keep_rankings

                keep_rankings(datasets)  # lmeb.Results.inspect reads them after the scratch folder is gone
                for summary in summaries:
                    summary.path = None  # the scratch folder is gone once this returns: the results live in memory
    return Results(datasets, name=label, setting=setting, summaries=summaries, seconds=time.perf_counter() - started)
