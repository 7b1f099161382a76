"""lmeb: a fast, exact harness for LMEB, the Long-horizon Memory Embedding Benchmark.

``lmeb.evaluate(model, tasks=..., data=...)`` runs any model and returns ``lmeb.Results``;
``lmeb.load_results(path)`` reads results files back. Importing ``lmeb`` is light: the engine, the
model protocols and their libraries load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lmeb.lazy import submodules
from lmeb.tasks.registry import Selection, Subset, Task, get_task, get_tasks, select

__version__ = "0.1.0"

if TYPE_CHECKING:
    from lmeb.api import evaluate
    from lmeb.engine.hybrid import Hybrid
    from lmeb.models.base import Encoder, Reranker, Searcher
    from lmeb.results.collection import Results, load_results

_LAZY = {
    "evaluate": "lmeb.api",
    "Hybrid": "lmeb.engine.hybrid",
    "Results": "lmeb.results.collection",
    "load_results": "lmeb.results.collection",
    "Encoder": "lmeb.models.base",
    "Searcher": "lmeb.models.base",
    "Reranker": "lmeb.models.base",
}

__all__ = ["Encoder", "Hybrid", "Reranker", "Results", "Searcher", "Selection", "Subset", "Task", "__version__",
           "evaluate", "get_task", "get_tasks", "load_results", "select"]


_submodule = submodules(__name__)


def __getattr__(name: str) -> Any:
    """The API's heavier names and the subpackages, imported on first use (``import lmeb`` stays light)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    return _submodule(name)
