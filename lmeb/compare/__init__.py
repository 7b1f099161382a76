"""Comparing two models: paired per-query tests and the comparison table."""

from lmeb.lazy import submodules

__getattr__ = submodules(__name__)
