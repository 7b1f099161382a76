"""Data: the official on-disk layout and mteb's copies, read, fetched, converted, checked, counted."""

from lmeb.lazy import submodules

__getattr__ = submodules(__name__)
