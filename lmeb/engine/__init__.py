"""The engine: per subset, retrieve with the model's strategy and score with the metrics."""

from lmeb.lazy import submodules

__getattr__ = submodules(__name__)
