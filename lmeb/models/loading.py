"""What every model adapter needs around ``from_pretrained``: where the model is, its identity (hub commit and
the fingerprint of every weights byte, ``lmeb.models.fingerprint``: the embedding-cache and resume key), its
dtype, and one-line errors instead of library tracebacks."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lmeb.errors import LmebError
from lmeb.json_read import read_json_or
from lmeb.models.fingerprint import SCHEME, weights_fingerprint

PRECISIONS = ("fp32", "fp16", "bf16")
_PRECISION_ALIASES = {"float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class ModelSource:
    """A model given by the user: a local directory, or a hub id (``local_dir`` None until downloaded)."""

    spec: str
    local_dir: Path | None
    revision: str | None = None

    @property
    def is_hub(self) -> bool:
        return self.local_dir is None


def options_of(option_type: type, options: Any, given: dict[str, Any], what: str) -> Any:
    """An adapter's options value: ``options`` as passed, else ``option_type(**given)`` (the keyword spellings
    ``load_model`` and the CLI use); a name ``option_type`` has no field for is one line naming what it takes."""
    if options is not None:
        if given:
            raise LmebError(f"{what}: give options= or keyword options ({', '.join(sorted(given))}), not both")
        return options
    accepted = [f.name for f in fields(option_type)]
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise LmebError(f"option {', '.join(unknown)} does not apply to {what} (it takes: {', '.join(accepted)})")
    return option_type(**given)


def resolve_source(path_or_id: str | Path, revision: str | None = None) -> ModelSource:
    """A local directory if one exists at ``path_or_id``, else a hub id; anything else is a one-line error."""
    spec = str(path_or_id)
    path = Path(spec).expanduser()
    if path.is_dir():
        return ModelSource(spec, path.resolve(), revision)
    if path.exists():
        raise LmebError(f"model path {spec!r} is a file; give the model's directory")
    looks_local = spec.startswith((".", "/", "~")) or "\\" in spec or spec.count("/") > 1
    if looks_local or not _HUB_ID.match(spec):
        raise LmebError(f"model path {spec!r} does not exist and is not a hub id")
    return ModelSource(spec, None, revision)


def display_name(source: ModelSource) -> str:
    """A short name: the hub id, or a local directory's name (``org/name`` for a hub-cache snapshot)."""
    if source.local_dir is None:
        return source.spec
    parts = source.local_dir.parts
    if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--"):
        return parts[-3][len("models--") :].replace("--", "/")
    if source.local_dir.name in ("model", "models", "checkpoint", "snapshot") and len(parts) >= 2:
        return f"{parts[-2]}/{parts[-1]}"
    return source.local_dir.name


def _cached_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """The hub-cache snapshot folder of ``repo_id`` at ``revision`` (None when not downloaded)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return None
    for name in ("config.json", "modules.json", "tokenizer_config.json"):
        found = try_to_load_from_cache(repo_id, name, revision=revision)
        if isinstance(found, str):
            return Path(found).parent
    return None


def source_identity(source: ModelSource) -> dict[str, Any]:
    """``{model, revision, fingerprint}`` for a config(): the resolved hub commit and/or the weights hash.

    Call it after loading (a hub model is then in the local cache)."""
    directory = source.local_dir
    revision = source.revision
    if directory is None:
        directory = _cached_snapshot(source.spec, source.revision)
        if directory is not None and directory.parent.name == "snapshots":
            revision = directory.name  # the commit the revision resolved to
    if directory is None:
        return {"model": display_name(source), "revision": revision, "fingerprint": None}
    # every byte of every weights file, remembered by (path, size, mtime, inode): lmeb.models.fingerprint
    return {"model": display_name(source), "revision": revision, "fingerprint": weights_fingerprint(directory),
            "fingerprint_scheme": SCHEME}


def normalize_precision(precision: str) -> str:
    """``fp32|fp16|bf16`` or a torch dtype name (``bfloat16``, ``torch.float16``, ``half``, any case) -> lmeb's
    short name; anything else is a one-line error."""
    key = str(precision).lower().removeprefix("torch.")
    key = _PRECISION_ALIASES.get(key, key)
    if key not in PRECISIONS:
        raise LmebError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return key


def torch_dtype(precision: str) -> Any:
    """``fp32|fp16|bf16`` (or an alias ``normalize_precision`` takes) -> torch dtype."""
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[normalize_precision(precision)]


def default_device(device: str | None = None) -> str:
    """The given device once checked (one line if it is unknown or absent), else CUDA when present, else
    Apple MPS, else CPU. Every adapter resolves its device here, so ``--device cuda`` fails the same way."""
    import torch

    if device:
        try:
            parsed = torch.device(device)
        except (RuntimeError, ValueError):
            raise LmebError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from None
        if parsed.type == "cuda":
            if not torch.cuda.is_available():
                build = " (this torch is a CPU-only build)" if torch.version.cuda is None else ""
                raise LmebError(f"device {device!r} requested but CUDA is not available{build}; use --device cpu")
            if parsed.index is not None and parsed.index >= torch.cuda.device_count():
                raise LmebError(f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) "
                                "are visible")
        if parsed.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise LmebError(f"device {device!r} requested but Apple MPS is not available; use --device cpu")
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def token_limit(config: Any) -> int | None:
    """The most tokens a model can take: its ``max_position_embeddings`` (less RoBERTa's two offset
    positions); None when the config does not say."""
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit <= 0:
        return None
    return limit - 2 if "roberta" in str(getattr(config, "model_type", "")) else limit


def check_max_length(requested: int | None, limit: int | None, model: str) -> int | None:
    """``requested`` if it is a usable max length for ``model`` (at least 1, at most its ``limit``)."""
    if requested is None:
        return None
    if int(requested) < 1:
        raise LmebError(f"--max-length must be at least 1 token (got {requested})")
    if limit is not None and int(requested) > limit:
        raise LmebError(f"--max-length {requested} is past the limit of model {model!r} ({limit} tokens); "
                        f"use at most {limit}")
    return int(requested)


@contextlib.contextmanager
def loading_errors(source: ModelSource) -> Iterator[None]:
    """Turn what ``from_pretrained`` raises for a missing/unreadable/unreachable model into one line,
    with transformers' per-load progress bars off meanwhile (lmeb shows its own progress)."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    except LmebError:
        raise
    except (OSError, ValueError, KeyError, ImportError, RuntimeError, json.JSONDecodeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        if not source.is_hub:
            raise LmebError(f"cannot load model directory {source.spec!r}: {first}") from exc
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        hint = " (offline mode, HF_HUB_OFFLINE=1: only models already in the local hub cache load)" if offline else ""
        raise LmebError(
            f"model path {source.spec!r} does not exist and is not a hub id that could be loaded: {first}{hint}"
        ) from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def check_remote_code(source: ModelSource, allowed: bool, who: str) -> None:
    """A one-line refusal, before anything loads, when a local model folder maps its classes to its own Python
    files (``auto_map`` in ``config.json``/``tokenizer_config.json``) and the user did not allow remote code.
    A hub model is refused the same way by transformers itself (``trust_remote_code=False``)."""
    if allowed or source.local_dir is None:
        return
    for name in ("config.json", "tokenizer_config.json"):
        data = read_json_or(source.local_dir / name)
        if isinstance(data, dict) and data.get("auto_map"):
            from lmeb.safety import remote_code_error

            raise remote_code_error(source.spec, who)
