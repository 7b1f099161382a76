"""The paper's 15 embedding models as ``HFEncoder`` settings, read from ``spec/paper_model_configs.json``.

The file holds the official run scripts' per-model settings (pooling, normalisation, max length,
precision, ...) for the w/o inst. and w/ inst. settings. What the file states only in its ``source``
note is added here: tokenizer padding side (right for bge-m3 and bge-large-en-v1.5, left for all
others), EmbeddingGemma's two Dense projections after pooling, NV-Embed-v2's own pooled output.

A preset is found by its name, the name of its row in the paper's Tables 2/3 (``bge-m3 (Dense)``,
``KaLM-Embedding-V2.5``, ``jina-v5-text-small``), its hub id, in any case and with ``_``/``-``
interchangeable (``get_preset``).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from lmeb.errors import LmebError
from lmeb.tasks.settings import SETTINGS

SPEC_FILE = Path(__file__).resolve().parent.parent / "spec" / "paper_model_configs.json"

HUB_IDS = {  # preset name -> hub id (the model loaded when no --model-path is given)
    "KaLM_Embedding_V2.5": "KaLM-Embedding/KaLM-embedding-multilingual-mini-instruct-v2.5",
    "Qwen3-Embedding-0.6B": "Qwen/Qwen3-Embedding-0.6B",
    "bge-m3": "BAAI/bge-m3",
    "jina-embeddings-v5-text-small-retrieval": "jinaai/jina-embeddings-v5-text-small-retrieval",
    "jina-embeddings-v5-text-nano-retrieval": "jinaai/jina-embeddings-v5-text-nano-retrieval",
    "multilingual-e5-large-instruct": "intfloat/multilingual-e5-large-instruct",
    "KaLM_Embedding_V1.5": "HIT-TMG/KaLM-embedding-multilingual-mini-instruct-v1.5",
    "bge-large-en-v1.5": "BAAI/bge-large-en-v1.5",
    "EmbeddingGemma-300M": "google/embeddinggemma-300m",
    "Qwen3-Embedding-4B": "Qwen/Qwen3-Embedding-4B",
    "Qwen3-Embedding-8B": "Qwen/Qwen3-Embedding-8B",
    "KaLM-Embedding-Gemma3": "tencent/KaLM-Embedding-Gemma3-12B-2511",
    "NV-Embed-v2": "nvidia/NV-Embed-v2",
    "bge-multilingual-gemma2": "BAAI/bge-multilingual-gemma2",
    "e5-mistral-7b-instruct": "intfloat/e5-mistral-7b-instruct",
}
PAPER_ROWS = {  # preset name -> its row name in the paper's Tables 2 and 3 (where it differs)
    "KaLM_Embedding_V2.5": "KaLM-Embedding-V2.5",
    "bge-m3": "bge-m3 (Dense)",
    "jina-embeddings-v5-text-small-retrieval": "jina-v5-text-small",
    "jina-embeddings-v5-text-nano-retrieval": "jina-v5-text-nano",
    # the run scripts evaluate v1.5 (HIT-TMG's mini-instruct-v1.5, 494M, dim 896) for the row "KaLM-Embedding-V1"
    "KaLM_Embedding_V1.5": "KaLM-Embedding-V1",
}
RIGHT_PADDING = frozenset({"bge-m3", "bge-large-en-v1.5"})
EXTRA_OPTIONS: dict[str, dict[str, Any]] = {
    "EmbeddingGemma-300M": {"dense_layers": True},
    "NV-Embed-v2": {"output_key": "sentence_embeddings", "forward_mask_as": "pool_mask"},
}


@dataclass(frozen=True)
class Preset:
    """One paper model: its hub id and the official settings per evaluation setting."""

    name: str
    hub_id: str | None
    settings: dict[str, dict[str, Any]] = field(hash=False, compare=False, repr=False)

    @property
    def paper_name(self) -> str:
        """The model's row name in the paper's Tables 2 and 3."""
        return PAPER_ROWS.get(self.name, self.name)

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other names ``get_preset`` accepts besides the name and the hub id (the paper's spelling)."""
        return (self.paper_name,) if self.paper_name != self.name else ()

    def official(self, setting: str = "wo_inst") -> dict[str, Any]:
        """The run script's raw settings for ``wo_inst`` or ``w_inst``."""
        if setting not in self.settings:
            raise LmebError(f"preset {self.name!r} has no setting {setting!r}; choose one of {', '.join(SETTINGS)}")
        return dict(self.settings[setting])

    def use_instruction(self, setting: str = "wo_inst") -> bool:
        return bool(self.official(setting).get("use_instruction", False))

    def encoder_options(self, setting: str = "wo_inst") -> dict[str, Any]:
        """Keyword arguments of ``HFEncoder`` that reproduce the official wrapper for this model."""
        raw = self.official(setting)
        options = {
            "pooling": raw["pooler_type"],
            "normalize": bool(raw["do_norm"]),
            "max_length": int(raw["max_length"]),
            "padding_side": "right" if self.name in RIGHT_PADDING else "left",
            "precision": raw["precision"],
            "trust_remote_code": bool(raw.get("trust_remote_code", False)),
            "attn_implementation": raw.get("attn_implementation"),
            "batch_size": int(raw.get("batch_size", 32)),
            "instruction_template": raw.get("instruction_template", "Instruct: {}\nQuery:"),
            "preset": self.name,
        }
        options.update(EXTRA_OPTIONS.get(self.name, {}))
        return options


@cache
def presets() -> dict[str, Preset]:
    """All presets of the spec file, by name, in the file's order."""
    models = json.loads(SPEC_FILE.read_text(encoding="utf-8"))["models"]
    return {name: Preset(name, HUB_IDS.get(name), settings) for name, settings in models.items()}


def _fold(name: str) -> str:
    """Case and ``_``/``-`` do not tell presets apart: ``KaLM_Embedding_V2.5`` = ``kalm-embedding-v2.5``."""
    return name.strip().lower().replace("_", "-")


def find_preset(name: str, hub_ids: bool = True) -> Preset | None:
    """The preset whose name, paper row name or (with ``hub_ids``) hub id is ``name`` after folding; else None."""
    table = presets()
    if name in table:
        return table[name]
    key = _fold(name)
    for preset in table.values():
        names = (preset.name, *preset.aliases, *((preset.hub_id,) if hub_ids and preset.hub_id else ()))
        if key in {_fold(n) for n in names}:
            return preset
    return None


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (see ``find_preset``), or a one-line error with a hint."""
    found = find_preset(name)
    if found is not None:
        return found
    table = presets()
    folded = {_fold(key): preset for key, preset in table.items()}
    folded.update({_fold(a): p for p in table.values() for a in p.aliases})
    folded.update({_fold(p.hub_id): p for p in table.values() if p.hub_id})
    key = _fold(name)
    close = [k for k in folded if k.startswith(key) or key in k]  # a prefix or part: the file's first match
    close = close or difflib.get_close_matches(key, list(folded), n=1, cutoff=0.5)
    hint = (f"; did you mean {folded[close[0]].name}?" if close
            else f"; known presets: {', '.join(table)} (`lmeb presets` lists their aliases)")
    raise LmebError(f"unknown preset {name!r}{hint}")
