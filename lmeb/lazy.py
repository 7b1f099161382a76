"""Lazy submodules: a package imports a submodule when it is first named, so ``import lmeb`` stays light."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType


def submodules(package: str) -> Callable[[str], ModuleType]:
    """A package's ``__getattr__`` that imports its submodules on first use, so every documented dotted
    path (``lmeb.data.hub.download``) works after a bare ``import lmeb`` without loading them all."""

    def __getattr__(name: str) -> ModuleType:
        if not name.startswith("__"):
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{package}.{name}":
                    raise
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
