"""One reporter per run: where log lines go and whether progress bars are drawn, decided once by the caller.

``lmeb run`` builds it from ``--progress/--no-progress`` (bars only on a terminal by default);
``lmeb.evaluate`` defaults to no bars and log lines on stderr. The runner, the embedding store and every
adapter with a bar (KaLM's rerank) take their bars from the same value, so nothing below the caller
decides on its own whether to draw.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def to_stderr(message: str) -> None:
    """The default log: one line on stderr."""
    print(message, file=sys.stderr)


class NullBar:
    """A progress bar that draws nothing (what ``Reporter.bar`` gives when bars are off)."""

    def update(self, n: int = 1) -> None:
        """Nothing to draw."""

    def set_postfix_str(self, text: str) -> None:
        """Nothing to draw."""

    def close(self) -> None:
        """Nothing to close."""


@dataclass(frozen=True)
class Reporter:
    """Log lines (``log``) and progress bars (``bar``): ``bars=False`` gives bars that draw nothing."""

    log: Callable[[str], None] = to_stderr
    bars: bool = False

    def bar(self, **kwargs: Any) -> Any:
        """A tqdm bar on stderr (``total=``, ``desc=``, ``unit=``), or a ``NullBar`` when bars are off."""
        if not self.bars:
            return NullBar()
        from tqdm.auto import tqdm

        return tqdm(file=sys.stderr, leave=False, dynamic_ncols=True, **kwargs)
