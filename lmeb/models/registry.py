"""Turn a model spec from the command line into an encoder, a BM25 searcher or a reranker.

Specs (``load_model``):

* ``bm25`` -> ``BM25Searcher`` (mteb's bm25s baseline);
* ``preset=NAME`` (or ``preset:NAME``, or ``preset=NAME`` as a keyword, or a bare paper-model name such as
  ``Qwen3-Embedding-0.6B`` or its paper spelling ``bge-m3 (Dense)``) -> ``HFEncoder`` with the official
  settings of that paper model; the weights come from ``model_path`` when given, else the preset's hub id;
* ``hf:PATH`` -> ``HFEncoder`` (raw transformers, explicit ``pooling``/``normalize``/... options);
* ``kalm:PATH`` or a ``KaLM-Embedding/KaLM-Reranker-V1-*`` hub id -> ``lmeb.models.kalm.KalmReranker``;
* ``cross-encoder:PATH`` -> ``lmeb.models.cross_encoder.CrossEncoderReranker``;
* ``openai:MODEL`` -> ``lmeb.models.openai_api.OpenAIEncoder`` (any OpenAI-compatible /v1/embeddings server);
* ``mteb:NAME`` -> ``lmeb.models.mteb_model.MtebEncoder`` (loaded by ``mteb.get_model``, mteb's prompts);
* ``st:PATH`` or anything else (a local directory or a hub id) -> ``SentenceTransformerEncoder``.
* a prefix of ``COMPOSITE_SPECS`` (``hybrid:bm25+PATH``) -> the loader it names: models made of other
  models live above this layer and load their parts through ``load_model``, so they are named here as
  ``module:function`` and imported on use, never imported by this package.

Options whose value is None are dropped (the adapter's default applies); an option the chosen adapter
does not take is a one-line error. Heavy libraries load only when a model does.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from lmeb.errors import LmebError

KALM_RERANKERS = tuple(f"KaLM-Embedding/KaLM-Reranker-V1-{size}" for size in ("Nano", "Small", "Large"))
BM25_SPECS = ("bm25", "bm25s", "mteb/baseline-bm25s")
COMPOSITE_SPECS = {"hybrid": "lmeb.engine.hybrid:load_hybrid"}  # prefix -> loader of a model made of other models


def _options(target: Any, options: dict[str, Any], what: str, ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """``options`` without None values and ``ignore``d names; an error for a name ``target`` does not take."""
    given = {k: v for k, v in options.items() if v is not None and k not in ignore}
    params = inspect.signature(target).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return given
    unknown = sorted(set(given) - set(params))
    if unknown:
        accepted = ", ".join(n for n in params if n not in ("self", "path", "path_or_id"))
        raise LmebError(f"option {', '.join(unknown)} does not apply to {what} (it takes: {accepted})")
    return given


def split_spec(spec: str) -> tuple[str | None, str]:
    """``prefix:rest`` / ``preset=rest`` -> (prefix, rest); a plain spec -> (None, spec)."""
    for prefix in ("preset", "hf", "st", "kalm", "cross-encoder", "openai", "mteb"):
        for sep in (":", "="):
            if spec.lower().startswith(prefix + sep):
                return prefix, spec[len(prefix) + 1 :].strip()
    return None, spec


def is_bm25_spec(spec: Any) -> bool:
    """Whether a model spec names lmeb's BM25 (``bm25``, ``bm25s`` or mteb's baseline name)."""
    return isinstance(spec, (str, Path)) and str(spec).strip().lower() in BM25_SPECS


def _is_kalm(spec: str) -> bool:
    return spec.strip("/").lower() in {name.lower() for name in KALM_RERANKERS}


def _preset_encoder(name: str, model_path: str | Path | None, setting: str, options: dict[str, Any]) -> Any:
    from lmeb.models.hf import HFEncoder
    from lmeb.models.presets import get_preset

    preset = get_preset(name)
    path = model_path or preset.hub_id
    if path is None:
        raise LmebError(f"preset {preset.name!r} has no known hub id; pass --model-path DIR")
    merged = {**preset.encoder_options(setting), **_options(HFEncoder, options, "an HF encoder")}
    allowed = options.get("trust_remote_code") is True  # only the user's own --trust-remote-code allows it
    if merged["trust_remote_code"] and not allowed:
        from lmeb.safety import remote_code_error

        raise remote_code_error(str(path), f"preset {preset.name!r}")
    merged["trust_remote_code"] = allowed
    return HFEncoder(path, **merged)


def load_model(
    spec: str | Path | None = None,
    *,
    preset: str | None = None,
    model_path: str | Path | None = None,
    setting: str = "wo_inst",
    cache_root: str | Path | None = None,
    **options: Any,
) -> Any:
    """An ``Encoder``, a ``BM25Searcher`` (has ``.search``) or a ``Reranker`` (has ``.score``) for ``spec``.

    ``setting`` (``wo_inst``/``w_inst``) picks a preset's official settings (they differ only in batch
    size); whether queries get the instruction is the caller's choice through ``encode(..., instruction)``.
    ``cache_root`` (lmeb's cache folder) gives a KaLM reranker its on-disk passage cache.
    """
    if spec is None and preset is None:
        raise LmebError("no model given: pass a model path, a hub id, bm25, or --preset NAME")
    text = "" if spec is None else str(spec).strip()
    prefix, rest = split_spec(text)
    if preset is not None:  # --preset NAME [--model-path DIR], or load_model(DIR, preset=NAME)
        return _preset_encoder(preset, model_path or text or None, setting, options)
    if prefix == "preset":
        return _preset_encoder(rest, model_path, setting, options)
    composite = text.split(":", 1)[0].lower() if ":" in text else None
    if composite in COMPOSITE_SPECS:  # e.g. hybrid:bm25+PATH (lmeb.engine.hybrid), loaded by the module it names
        module, function = COMPOSITE_SPECS[composite].split(":")
        loader = getattr(importlib.import_module(module), function)
        return loader(text[len(composite) + 1:], setting=setting, cache_root=cache_root, **options)
    if prefix is None and is_bm25_spec(text):
        from lmeb.models.bm25 import BM25Searcher

        return BM25Searcher(**_options(BM25Searcher, options, "bm25"))
    if prefix in ("kalm", "cross-encoder") or (prefix is None and _is_kalm(text)):
        return load_reranker(text, cache_root=cache_root, **options)
    if prefix == "openai":
        from lmeb.models.openai_api import OpenAIEncoder

        given = {"cache_root": cache_root, **options}  # the probe vectors live in the cache (models/api_probe.py)
        return OpenAIEncoder(rest, **_options(OpenAIEncoder, given, "an openai: encoder"))
    if prefix == "mteb":
        from lmeb.models.mteb_model import MtebEncoder

        return MtebEncoder(rest, **_options(MtebEncoder, options, "an mteb: model"))
    if prefix == "hf":
        from lmeb.models.hf import HFEncoder

        return HFEncoder(rest, **_options(HFEncoder, options, "an HF encoder"))
    if prefix is None and not Path(text).expanduser().exists():
        from lmeb.models.presets import find_preset

        if find_preset(text, hub_ids=False):  # a bare paper-model name or its paper spelling (a hub id stays ST)
            return _preset_encoder(text, model_path, setting, options)
    from lmeb.models.sentence_transformer import SentenceTransformerEncoder

    st_options = _options(SentenceTransformerEncoder, options, "a sentence-transformers encoder")
    return SentenceTransformerEncoder(rest, **st_options)


def load_reranker(spec: str | Path, cache_root: str | Path | None = None, **options: Any) -> Any:
    """A ``Reranker``: ``kalm:PATH`` / a KaLM-Reranker hub id -> KalmReranker, else a CrossEncoderReranker.

    With ``cache_root`` a KaLM reranker keeps its pooled passage states in ``<cache_root>/kalm`` too,
    so a rerun encodes no passage it has seen (cross-encoders read query and passage together: no cache).
    """
    prefix, rest = split_spec(str(spec).strip())
    if prefix == "kalm" or (prefix is None and _is_kalm(rest)):
        from lmeb.models.kalm import KalmReranker

        kalm_options = _options(KalmReranker, options, "the KaLM reranker")
        if cache_root is not None:
            from lmeb.embeddings.store import Cache  # the cache folder's layout, named once

            kalm_options.setdefault("cache_dir", Cache(Path(cache_root).expanduser()).kalm)
        return KalmReranker(rest, **kalm_options)
    if prefix not in (None, "cross-encoder"):
        raise LmebError(f"{spec!r} is not a reranker spec (use kalm:PATH, cross-encoder:PATH or a KaLM-Reranker id)")
    from lmeb.models.cross_encoder import CrossEncoderReranker

    return CrossEncoderReranker(rest, **_options(CrossEncoderReranker, options, "a cross-encoder reranker"))

