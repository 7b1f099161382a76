"""Results: one JSON file per dataset per model per setting, its identity, the store and the collection."""

from lmeb.lazy import submodules

__getattr__ = submodules(__name__)
