"""Models: the three protocols (``base``), the adapters, and the spec registry (``registry.load_model``).

Each adapter lives in its own module and loads its libraries only when a model does.
"""

from lmeb.lazy import submodules

__getattr__ = submodules(__name__)
