"""Any sentence-transformers cross-encoder (a local directory or a hub id) as an LMEB ``Reranker``.

Instructions: classic cross-encoders (MS MARCO MiniLM, BGE rerankers, ...) were trained on bare
(query, passage) pairs, so by default they get NO instruction, in both the w/o inst. and w/ inst.
settings (``score`` ignores it). ``instruction_template`` (e.g. ``"{instruction} {query}"``) opts in:
the query becomes the formatted string whenever an instruction is given.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lmeb.errors import LmebError, LmebWarning
from lmeb.json_read import read_json_or
from lmeb.models.loading import (
    check_max_length,
    check_remote_code,
    default_device,
    display_name,
    loading_errors,
    normalize_precision,
    resolve_source,
    source_identity,
    token_limit,
    torch_dtype,
)
from lmeb.models.oom import run_with_backoff
from lmeb.models.sentence_transformer import st_batches


def _check_template(template: str) -> None:
    """A cross-encoder template must hold ``{query}`` and format with ``instruction`` and ``query``."""
    if "{query}" not in template:
        raise LmebError(f"instruction_template {template!r} must contain '{{query}}'")
    try:
        template.format(instruction="instruction", query="query")
    except (IndexError, KeyError, ValueError) as exc:
        raise LmebError(f"instruction_template {template!r} does not format ({exc!r}); "
                        "use '{instruction}' and '{query}', and '{{'/'}}' for literal braces") from None


def saved_architectures(local_dir: Path | None) -> list[str] | None:
    """``config.json``'s ``architectures`` of a local checkpoint (None when there is no readable one)."""
    config = read_json_or(Path(local_dir) / "config.json") if local_dir else None
    found = config.get("architectures") if isinstance(config, dict) else None
    return [str(a) for a in found] if isinstance(found, list) else None


def check_trained_head(architectures: list[str], name: str, allow_new_head: bool) -> None:
    """Refuse a checkpoint that has no trained classification head (e.g. a bi-encoder passed as a
    cross-encoder): transformers gives it a randomly initialised head, whose scores mean nothing.

    The checkpoint's saved ``config.architectures`` (kept as saved when the model is loaded) says which head
    it was trained with; a cross-encoder's ends in ``ForSequenceClassification``.
    """
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return
    saved = ", ".join(architectures) or "no architecture"
    message = (f"{name}: this checkpoint ({saved}) has no trained classification head, so a cross-encoder would "
               "score with a randomly initialised one")
    if not allow_new_head:
        raise LmebError(message + " (is it a bi-encoder? use it as --model; --allow-new-head to score anyway)")
    warnings.warn(message + " (--allow-new-head)", LmebWarning, stacklevel=3)


class CrossEncoderReranker:
    """Scores pairs with ``sentence_transformers.CrossEncoder`` (its own activation, e.g. sigmoid); a batch
    that runs out of accelerator memory is halved and retried (``lmeb.models.oom``)."""

    def __init__(
        self,
        path_or_id: str | Path,
        batch_size: int = 32,
        max_length: int | None = None,
        device: str | None = None,
        *,
        instruction_template: str | None = None,
        precision: str = "fp32",
        revision: str | None = None,
        name: str | None = None,
        allow_new_head: bool = False,
    ) -> None:
        if instruction_template is not None:
            _check_template(instruction_template)
        self.source = resolve_source(path_or_id, revision)
        check_max_length(max_length, None, self.source.spec)  # 0 or -1: before loading anything
        self.name = name or display_name(self.source)
        self.batch_size = int(batch_size)
        self.instruction_template = instruction_template
        self.precision = normalize_precision(precision)
        check_remote_code(self.source, False, f"reranker {self.source.spec!r}")
        spec = str(self.source.local_dir or self.source.spec)
        saved = saved_architectures(self.source.local_dir)
        if saved is not None:  # a local checkpoint: checked before loading (no load report, no wait)
            check_trained_head(saved, self.name, allow_new_head)
        # torch only after the checks: a refused checkpoint fails in a second, not after the imports
        self.device = default_device(device)
        from sentence_transformers import CrossEncoder

        with loading_errors(self.source):
            self.model = CrossEncoder(spec, device=self.device, max_length=max_length, revision=revision,
                                      trust_remote_code=False,
                                      local_files_only=self.source.local_dir is not None,
                                      model_kwargs={"dtype": torch_dtype(self.precision)})
        if saved is None:  # a hub id: its config is known once loaded
            config = getattr(getattr(self.model, "transformers_model", None), "config", None)
            check_trained_head(list(getattr(config, "architectures", None) or []), self.name, allow_new_head)
        if self.model.num_labels != 1:
            raise LmebError(f"{self.name}: a reranker needs one output score, this cross-encoder has "
                            f"{self.model.num_labels} labels")
        limit = token_limit(getattr(getattr(self.model, "transformers_model", None), "config", None))
        check_max_length(max_length, limit, self.source.spec)
        self.max_length = self.model.max_seq_length
        self.identity = source_identity(self.source)
        self.stats: dict[str, int] = {}  # oom_backoffs once a batch is halved (lmeb.models.oom)

    def config(self) -> dict[str, Any]:
        return {
            "class": "CrossEncoderReranker",
            **self.identity,
            "max_length": self.max_length,
            "precision": self.precision,
            "activation": type(self.model.activation_fn).__name__,
            "instruction_template": self.instruction_template,
        }

    def score(self, pairs: list[tuple[str, str]], instruction: str | None = None) -> np.ndarray:
        """One score per (query, passage) pair, in input order; higher = more relevant."""
        pairs = list(pairs)
        if not pairs:
            return np.zeros(0, dtype=np.float64)
        if instruction is not None and self.instruction_template is not None:
            pairs = [(self.instruction_template.format(instruction=instruction, query=q), d) for q, d in pairs]

        def run(rows: list[int]) -> tuple[list[int], np.ndarray]:
            batch = [pairs[i] for i in rows]
            return rows, np.asarray(self.model.predict(batch, batch_size=len(batch), show_progress_bar=False,
                                                       convert_to_numpy=True), dtype=np.float64).reshape(-1)

        def length(i: int) -> str:
            return f"{len(pairs[i][0]) + len(pairs[i][1])} characters (query + passage)"

        scores = np.empty(len(pairs), dtype=np.float64)
        for batch in st_batches(self.model, pairs, self.batch_size):
            for rows, values in run_with_backoff(batch, run, stats=self.stats, name=self.name, length=length):
                scores[rows] = values
        if not np.isfinite(scores).all():
            raise LmebError(f"{self.name}: non-finite scores for {int((~np.isfinite(scores)).sum())} pair(s)")
        return scores
