"""Reports: aggregation with completeness, the Table value and its views, the paper, exports."""

from lmeb.lazy import submodules

__getattr__ = submodules(__name__)
