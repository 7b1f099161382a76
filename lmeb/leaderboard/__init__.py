"""The static leaderboard site: page, figures, Pareto plots and assets."""

from lmeb.lazy import submodules

__getattr__ = submodules(__name__)
