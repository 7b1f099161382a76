"""A model from mteb's registry as an ``Encoder`` (``mteb:<model name>`` on the CLI).

``mteb.get_model`` loads it with its pinned revision and its own loader, and every text goes through
the model's ``encode`` with mteb's inputs: a DataLoader made by mteb for the subset's real mteb
``TaskMetadata`` (the LMEB tasks are registered in mteb; ``Task.mteb_name``), ``hf_subset`` and
``PromptType.query``/``document``. So the model's task-specific prompts apply exactly as in mteb.

Instructions: mteb models bring their own prompt rules, so lmeb's query template is not prepended. In
the ``w_inst`` setting the task metadata carries the subset's instruction as its query prompt
(``prompt={"query": instruction}``), which mteb's instruction-following wrappers put into their own
template; models without instructions (plain sentence-transformers) read the same text in both settings.

The runner hook: vectors depend on the task, so the runner asks ``for_task(task, subset)`` for the
encoder of each subset (an ``MtebTaskEncoder``: same loaded model, ``config()`` naming the mteb task so
the embedding cache keeps tasks apart). The ``MtebEncoder`` itself refuses to encode without a task.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from lmeb.errors import LmebError
from lmeb.models.base import Kind, check_finite
from lmeb.models.checks import from_torch
from lmeb.models.oom import retry_with_smaller_batches

ADAPTER_VERSION = 1  # bump when this adapter changes the vectors it returns (it keys the embedding cache)
_SIMILARITIES = {"cosine": "cosine", "dot": "dot"}


class MtebEncoder:
    """A model loaded by ``mteb.get_model``; encode through ``for_task(task, subset)``."""

    def __init__(self, model_name: str, *, revision: str | None = None, device: str | None = None,
                 batch_size: int = 32, name: str | None = None, trust_remote_code: bool = False) -> None:
        try:
            import mteb
        except ImportError:
            raise LmebError("mteb: models need mteb: pip install 'lmeb[mteb]'") from None
        from lmeb.models.loading import default_device

        try:
            self.meta = mteb.get_model_meta(model_name, revision)
        except Exception as exc:  # mteb raises several kinds for unknown names or an unreachable hub
            raise LmebError(f"mteb: cannot find model {model_name!r} in mteb's registry ({exc})") from None
        similarity = str(getattr(self.meta.similarity_fn_name, "value", self.meta.similarity_fn_name) or "cosine")
        if similarity not in _SIMILARITIES:
            raise LmebError(f"mteb:{model_name} scores with {similarity!r}; lmeb supports cosine or dot")
        self.similarity: Literal["cosine", "dot"] = _SIMILARITIES[similarity]  # type: ignore[assignment]
        if (getattr(self.meta, "loader_kwargs", None) or {}).get("trust_remote_code") and not trust_remote_code:
            from lmeb.safety import remote_code_error  # mteb's loader would pass trust_remote_code=True itself

            raise remote_code_error(str(getattr(self.meta, "name", None) or model_name), f"mteb:{model_name}")
        self.device = default_device(device)
        self.batch_size = int(batch_size)
        try:
            self.model = mteb.get_model(model_name, revision=self.meta.revision, device=self.device)
        except (OSError, ValueError) as exc:
            raise LmebError(f"mteb:{model_name} (revision {self.meta.revision}) could not be loaded: "
                            f"{' '.join(str(exc).split())[:300]}") from None
        self.model_name = model_name
        self.name = name or model_name
        self.mteb_version = mteb.__version__
        self._metadata: dict[str, Any] = {}
        self.stats: dict[str, int] = {}  # oom_backoffs once a call is retried with smaller batches

    def task_metadata(self, mteb_task: str) -> Any:
        """The real mteb ``TaskMetadata`` of an LMEB dataset (by its mteb name)."""
        if mteb_task not in self._metadata:
            import mteb

            try:
                self._metadata[mteb_task] = mteb.get_task(mteb_task).metadata
            except Exception as exc:  # KeyError/ValueError by mteb version
                raise LmebError(f"mteb {self.mteb_version} has no task {mteb_task!r} ({exc})") from None
        return self._metadata[mteb_task]

    def for_task(self, task: Any, subset: str) -> MtebTaskEncoder:
        """The encoder for one LMEB subset (``task`` is an ``lmeb.tasks.registry.Task``)."""
        return MtebTaskEncoder(self, self.task_metadata(task.mteb_name), task.subset(subset).mteb_name)

    def encode(self, texts: list[str], kind: Kind = "query", instruction: str | None = None) -> np.ndarray:
        raise LmebError(f"mteb:{self.model_name} encodes for a task: call for_task(task, subset) first "
                        "(the runner does)")

    def config(self) -> dict[str, Any]:
        """Everything that changes the vectors for any task (a task's encoder adds the task)."""
        return {
            "class": "MtebEncoder",
            "adapter_version": ADAPTER_VERSION,
            "model": self.model_name,
            "revision": self.meta.revision,
            "mteb_version": self.mteb_version,
            "similarity": self.similarity,
        }


class MtebTaskEncoder:
    """An ``MtebEncoder`` bound to one mteb task and subset: mteb's prompts for that task."""

    def __init__(self, parent: MtebEncoder, metadata: Any, hf_subset: str) -> None:
        self.parent = parent
        self.metadata = metadata
        self.hf_subset = hf_subset
        self.name = parent.name
        self.similarity = parent.similarity

    def encode(self, texts: list[str], kind: Kind = "query", instruction: str | None = None) -> np.ndarray:
        """float32 vectors of ``texts`` as mteb's retrieval evaluation would compute them."""
        from datasets import Dataset
        from mteb._create_dataloaders import create_dataloader
        from mteb.types import PromptType

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        prompt_type = PromptType.query if kind == "query" else PromptType.document
        metadata = self.metadata
        if kind == "query" and instruction is not None:
            metadata = metadata.model_copy(update={"prompt": {"query": instruction}})
        dataset = Dataset.from_dict({"id": [str(i) for i in range(len(texts))], "text": list(texts)})

        def run(batch_size: int) -> Any:  # mteb batches inside: out of memory repeats the call, smaller batches
            loader = create_dataloader(dataset, task_metadata=metadata, prompt_type=prompt_type, batch_size=batch_size)
            return self.parent.model.encode(loader, task_metadata=metadata, hf_split="test", hf_subset=self.hf_subset,
                                            prompt_type=prompt_type, batch_size=batch_size, show_progress_bar=False)

        vectors = retry_with_smaller_batches(run, self.parent.batch_size, stats=self.parent.stats, name=self.name,
                                             length=lambda: f"{max(len(t) for t in texts)} characters")
        return check_finite(np.asarray(from_torch(vectors), dtype=np.float32), self.name)

    def config(self) -> dict[str, Any]:
        return {**self.parent.config(), "mteb_task": self.metadata.name}
