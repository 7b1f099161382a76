"""Per-query inspection: texts, relevant documents, what a model retrieved, evidence distance."""

from lmeb.lazy import submodules

__getattr__ = submodules(__name__)
