"""Turn a model spec from the command line into an encoder, a searcher or a reranker: a table of prefixes.

A spec is ``PREFIX:REST`` (the built-ins also take ``PREFIX=REST``) or a bare spec. Each prefix names a
loader, a callable ``(rest, options) -> Encoder | Searcher | Reranker`` (lm-evaluation-harness's
``register_model`` style); ``options`` holds the model options given (``pooling``, ``device``...) plus
``setting``, ``cache`` (a ``lmeb.cache.Cache`` or None) and, when given, ``model_path`` (``LOAD_CONTEXT``:
what lmeb knows about the run).
Built-in prefixes (``register_model``):

* ``preset:NAME`` -> ``HFEncoder`` with the official settings of that paper model; the weights come from
  ``model_path`` when given, else the preset's hub id;
* ``hf:PATH`` -> ``HFEncoder`` (raw transformers, explicit ``pooling``/``normalize``/... options);
* ``st:PATH`` -> ``SentenceTransformerEncoder``;
* ``kalm:PATH`` -> ``lmeb.models.kalm.KalmReranker``; ``cross-encoder:PATH`` -> ``CrossEncoderReranker``;
* ``openai:MODEL`` -> ``lmeb.models.openai_api.OpenAIEncoder`` (any OpenAI-compatible /v1/embeddings server);
* ``mteb:NAME`` -> ``lmeb.models.mteb_model.MtebEncoder`` (loaded by ``mteb.get_model``, mteb's prompts);
* ``hybrid:bm25+PATH`` -> ``lmeb.engine.hybrid.load_hybrid``: a model made of other models lives above this
  layer and loads its parts through ``load_model``, so it is registered as a ``module:function`` string,
  imported on use, never imported by this package.

Bare specs: ``bm25`` (``bm25s``, mteb's ``mteb/baseline-bm25s``) -> ``BM25Searcher``; a
``KaLM-Embedding/KaLM-Reranker-V1-*`` hub id -> KaLM; a paper-model name (``Qwen3-Embedding-0.6B``, or its
paper spelling ``bge-m3 (Dense)``) that is not a local path -> its preset; anything else (a directory or a
hub id) -> sentence-transformers.

Other packages add prefixes through the entry-point group ``lmeb.models`` (name = prefix, value = a loader
as above), looked up only for a prefix that is not built in and imported only then; a built-in prefix
wins over a plugin of the same name. Options whose value is None are dropped (the adapter's default
applies); an option the chosen adapter does not take is a one-line error. Heavy libraries load only when
a model does.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmeb.cache import Cache
from lmeb.errors import LmebError
from lmeb.models.base import protocol_of

Loader = Callable[[str, dict[str, Any]], Any]
LOAD_CONTEXT = ("setting", "cache", "model_path")  # what every loader gets besides the model options
ENTRY_POINT_GROUP = "lmeb.models"
KALM_RERANKERS = tuple(f"KaLM-Embedding/KaLM-Reranker-V1-{size}" for size in ("Nano", "Small", "Large"))
BM25_SPECS = ("bm25", "bm25s", "mteb/baseline-bm25s")
_LOADERS: dict[str, Loader | str] = {}  # prefix -> loader, or "module:function" imported on use
_PREFIX = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*):(.*)", re.DOTALL)


def register_model(prefix: str, loader: Loader | str | None = None) -> Any:
    """Make ``prefix:REST`` specs load with ``loader(rest, options)``; as a decorator without ``loader``.

    ``loader`` may be a ``"module:function"`` string, imported on first use (so a layer above the models
    can register a model made of models without this package importing it).
    """
    def add(fn: Loader | str) -> Loader | str:
        _LOADERS[prefix.lower()] = fn
        return fn

    return add if loader is None else add(loader)


def model_prefixes() -> list[str]:
    """Every prefix a spec may start with: the built-ins, then those installed packages declare
    (``lmeb.models`` entry points, listed without importing them)."""
    plugins = sorted({ep.name.lower() for ep in _entry_points()} - set(_LOADERS))
    return [*_LOADERS, *plugins]


def accepted_options(target: Any) -> list[str] | None:
    """The option names ``target`` (an adapter class) takes: its keyword parameters plus the fields of its
    ``options_type`` dataclass, if any; None when it takes any keyword (``**kwargs`` and no dataclass)."""
    params = inspect.signature(target).parameters
    names = [n for n, p in params.items() if n not in ("self", "path", "path_or_id", "options")
             and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)]
    option_type = getattr(target, "options_type", None)
    if option_type is not None:
        return names + [f.name for f in dataclasses.fields(option_type)]
    return None if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()) else names


def _options(target: Any, options: dict[str, Any], what: str, ignore: tuple[str, ...] = LOAD_CONTEXT
             ) -> dict[str, Any]:
    """``options`` without None values and ``ignore``d names; an error for a name ``target`` does not take."""
    given = {k: v for k, v in options.items() if v is not None and k not in ignore}
    accepted = accepted_options(target)
    unknown = [] if accepted is None else sorted(set(given) - set(accepted))
    if unknown:
        raise LmebError(f"option {', '.join(unknown)} does not apply to {what} (it takes: {', '.join(accepted)})")
    return given


def split_spec(spec: str) -> tuple[str | None, str]:
    """``prefix:rest`` / ``preset=rest`` -> (prefix, rest); a plain spec (or an existing path) -> (None, spec).

    A built-in prefix takes ``:`` or ``=``; any other word before ``:`` is a prefix too (an ``lmeb.models``
    plugin's, or an unknown one ``load_model`` reports).
    """
    for prefix in _LOADERS:
        for sep in (":", "="):
            if spec.lower().startswith(prefix + sep):
                return prefix, spec[len(prefix) + 1 :].strip()
    match = _PREFIX.fullmatch(spec)
    if match and not Path(spec).expanduser().exists():
        return match.group(1).lower(), match.group(2).strip()
    return None, spec


def is_bm25_spec(spec: Any) -> bool:
    """Whether a model spec names lmeb's BM25 (``bm25``, ``bm25s`` or mteb's baseline name)."""
    return isinstance(spec, (str, Path)) and str(spec).strip().lower() in BM25_SPECS


def _is_kalm(spec: str) -> bool:
    return spec.strip("/").lower() in {name.lower() for name in KALM_RERANKERS}


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    return list(entry_points(group=ENTRY_POINT_GROUP))


def _plugin(prefix: str) -> Loader:
    """The loader an installed package declares for ``prefix`` (entry point group ``lmeb.models``), checked
    on use: an import failure or a result that is no model is one line naming the plugin."""
    found = [ep for ep in _entry_points() if ep.name.lower() == prefix]
    if not found:
        raise LmebError(f"unknown model prefix {prefix!r}: use one of {', '.join(model_prefixes())}, or install a "
                        f"package that declares it in the {ENTRY_POINT_GROUP!r} entry-point group")
    ep = found[0]
    where = f"model plugin {ep.name!r} ({ep.value})"
    try:
        loader = ep.load()
    except Exception as exc:  # a third party's import error: one line, not its traceback
        raise LmebError(f"{where} failed to import: {type(exc).__name__}: {exc}") from None
    if not callable(loader):
        raise LmebError(f"{where} is not callable: it must be a function (rest of the spec, options) -> model")

    def load(rest: str, options: dict[str, Any]) -> Any:
        try:
            model = loader(rest, {k: v for k, v in options.items() if v is not None})
        except LmebError:
            raise
        except Exception as exc:
            raise LmebError(f"{where} failed to load {rest!r}: {type(exc).__name__}: {exc}") from None
        if protocol_of(model) is None:
            raise LmebError(f"{where} returned a {type(model).__name__}, not an Encoder, Searcher or Reranker "
                            "(an object with encode(texts, kind, instruction), search(...) or score(pairs, ...))")
        return model

    return load


def _loader(prefix: str) -> Loader:
    found = _LOADERS.get(prefix)
    if found is None:
        return _plugin(prefix)
    if isinstance(found, str):
        module, function = found.split(":")
        return getattr(importlib.import_module(module), function)
    return found


def load_model(
    spec: str | Path | None = None,
    *,
    preset: str | None = None,
    model_path: str | Path | None = None,
    setting: str = "wo_inst",
    cache: Cache | None = None,
    **options: Any,
) -> Any:
    """An ``Encoder``, a ``Searcher`` (has ``.search``) or a ``Reranker`` (has ``.score``) for ``spec``.

    ``setting`` (``wo_inst``/``w_inst``) picks a preset's official settings (they differ only in batch
    size); whether queries get the instruction is the caller's choice through ``encode(..., instruction)``.
    ``cache`` (lmeb's cache folder, ``lmeb.cache.Cache``) gives a KaLM reranker its on-disk passage cache.
    """
    if spec is None and preset is None:
        raise LmebError("no model given: pass a model path, a hub id, bm25, or --preset NAME")
    text = "" if spec is None else str(spec).strip()
    context = {"setting": setting, "cache": cache, **options}
    if model_path is not None:
        context["model_path"] = model_path
    if preset is not None:  # --preset NAME [--model-path DIR], or load_model(DIR, preset=NAME)
        return _preset_encoder(preset, model_path or text or None, context)
    prefix, rest = split_spec(text)
    return _bare(text, context) if prefix is None else _loader(prefix)(rest, context)


def load_reranker(spec: str | Path, cache: Cache | None = None, **options: Any) -> Any:
    """A ``Reranker``: ``kalm:PATH`` / a KaLM-Reranker hub id -> KalmReranker, ``cross-encoder:PATH`` or a bare
    spec -> a CrossEncoderReranker, a plugin's prefix -> what it loads (it must score pairs).

    With ``cache`` a KaLM reranker keeps its pooled passage states in its ``kalm/`` folder too,
    so a rerun encodes no passage it has seen (cross-encoders read query and passage together: no cache).
    """
    prefix, rest = split_spec(str(spec).strip())
    context = {"cache": cache, **options}
    if prefix == "kalm" or (prefix is None and _is_kalm(rest)):
        return _kalm(rest, context)
    if prefix is None or prefix == "cross-encoder":
        return _cross_encoder(rest, context)
    if prefix in _LOADERS:
        raise LmebError(f"{spec!r} is not a reranker spec (use kalm:PATH, cross-encoder:PATH or a KaLM-Reranker id)")
    model = _plugin(prefix)(rest, context)
    if protocol_of(model) != "reranker":
        raise LmebError(f"{spec!r} is not a reranker: it has no method score(pairs, instruction)")
    return model


# --- the built-in loaders --------------------------------------------------------------------------------

def _preset_encoder(name: str, model_path: str | Path | None, options: dict[str, Any]) -> Any:
    from lmeb.models.hf import HFEncoder
    from lmeb.models.presets import get_preset

    preset = get_preset(name)
    path = model_path or preset.hub_id
    if path is None:
        raise LmebError(f"preset {preset.name!r} has no known hub id; pass --model-path DIR")
    merged = {**preset.encoder_options(options["setting"]), **_options(HFEncoder, options, "an HF encoder")}
    allowed = options.get("trust_remote_code") is True  # only the user's own --trust-remote-code allows it
    if merged["trust_remote_code"] and not allowed:
        from lmeb.safety import remote_code_error

        raise remote_code_error(str(path), f"preset {preset.name!r}")
    merged["trust_remote_code"] = allowed
    return HFEncoder(path, **merged)


@register_model("preset")
def _preset(rest: str, options: dict[str, Any]) -> Any:
    return _preset_encoder(rest, options.get("model_path"), options)


@register_model("hf")
def _hf(rest: str, options: dict[str, Any]) -> Any:
    from lmeb.models.hf import HFEncoder

    return HFEncoder(rest, **_options(HFEncoder, options, "an HF encoder"))


@register_model("st")
def _st(rest: str, options: dict[str, Any]) -> Any:
    from lmeb.models.sentence_transformer import SentenceTransformerEncoder

    return SentenceTransformerEncoder(rest, **_options(SentenceTransformerEncoder, options,
                                                        "a sentence-transformers encoder"))


@register_model("kalm")
def _kalm(rest: str, options: dict[str, Any]) -> Any:
    from lmeb.models.kalm import KalmReranker

    kalm_options = _options(KalmReranker, options, "the KaLM reranker")
    if options.get("cache") is not None:
        kalm_options.setdefault("cache_dir", options["cache"].kalm)
    return KalmReranker(rest, **kalm_options)


@register_model("cross-encoder")
def _cross_encoder(rest: str, options: dict[str, Any]) -> Any:
    from lmeb.models.cross_encoder import CrossEncoderReranker

    return CrossEncoderReranker(rest, **_options(CrossEncoderReranker, options, "a cross-encoder reranker"))


@register_model("openai")
def _openai(rest: str, options: dict[str, Any]) -> Any:
    from lmeb.models.openai_api import OpenAIEncoder

    # the probe vectors live in the cache (models/api_probe.py): cache is one of its options
    return OpenAIEncoder(rest, **_options(OpenAIEncoder, options, "an openai: encoder", ("setting", "model_path")))


@register_model("mteb")
def _mteb(rest: str, options: dict[str, Any]) -> Any:
    from lmeb.models.mteb_model import MtebEncoder

    return MtebEncoder(rest, **_options(MtebEncoder, options, "an mteb: model"))


register_model("hybrid", "lmeb.engine.hybrid:load_hybrid")  # a model made of models: above this layer


def _bare(text: str, options: dict[str, Any]) -> Any:
    """A spec without a prefix: BM25, a KaLM-Reranker hub id, a paper-model name, else sentence-transformers."""
    if is_bm25_spec(text):
        from lmeb.models.bm25 import BM25Searcher

        return BM25Searcher(**_options(BM25Searcher, options, "bm25"))
    if _is_kalm(text):
        return _kalm(text, options)
    if not Path(text).expanduser().exists():
        from lmeb.models.presets import find_preset

        if find_preset(text, hub_ids=False):  # a bare paper-model name or its paper spelling (a hub id stays ST)
            return _preset_encoder(text, options.get("model_path"), options)
    return _st(text, options)
