"""The task registry (22 YAML files, 193 subsets) and the instruction settings."""

from lmeb.lazy import submodules

__getattr__ = submodules(__name__)
