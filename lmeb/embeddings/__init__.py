"""Embeddings: each unique text encoded once per model config, in memory and in the disk cache."""

from lmeb.lazy import submodules

__getattr__ = submodules(__name__)
