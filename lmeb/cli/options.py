"""Options shared by several commands, so each means the same everywhere.

* Selection (``tasks``, ``validate``, ``stats``, ``run``): ``--tasks A,B/subset``, ``--type T`` and
  ``--all``. ``--tasks`` and ``--type`` are repeatable and take the comma form too
  (``--type Dialogue --type Semantic`` = ``--type Dialogue,Semantic``; ``--tasks`` occurrences are kept
  as given, ``lmeb.tasks.registry.select`` splits them, so ``--tasks ,,`` is its error, not "everything");
  ``--all`` means "all datasets" (the default wherever a selection is optional). ``selection(args)``
  turns them into ``lmeb.tasks.registry.Selection`` values.
* Progress bars: ``--progress/--no-progress``; by default on only when stderr is a terminal, so a log
  file or a CI log gets no redraws (``progress_enabled(args)``); ``reporter(args)`` is the one
  ``lmeb.reporter.Reporter`` a command passes down (its bars decided here, log lines on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO


class CommaAppend(argparse.Action):
    """Append every comma-separated item of each occurrence: ``--type A --type B,C`` -> ``[A, B, C]``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        items = list(getattr(namespace, self.dest, None) or [])
        items += [item.strip() for item in str(values).split(",") if item.strip()]
        setattr(namespace, self.dest, items)


def add_selection(parser: argparse.ArgumentParser, *, extra_tasks_flags: Sequence[str] = (),
                  all_help: str = "all LMEB datasets (the default)") -> argparse._ArgumentGroup:
    """Add ``--tasks``, ``--type`` and ``--all`` (mutually exclusive with ``--tasks``) in one group."""
    group = parser.add_argument_group("what to select")
    pick = group.add_mutually_exclusive_group()
    pick.add_argument("--tasks", *extra_tasks_flags, dest="tasks", action="append", metavar="A,B/subset",
                      help="datasets or Dataset/subset, any case, comma-separated or repeated "
                           "(e.g. LoCoMo,Gorilla/gorilla_tensor)")
    pick.add_argument("--all", action="store_true", help=all_help)
    group.add_argument("--type", action=CommaAppend, metavar="TYPE",
                       help="memory type: Episodic, Dialogue, Semantic or Procedural; comma-separated or "
                            "repeated (--type Dialogue --type Semantic)")
    return group


def selection(args: argparse.Namespace) -> list:
    """The ``lmeb.tasks.registry.Selection`` list the selection options name (registry order)."""
    from lmeb.tasks.registry import select

    return select(args.tasks or None, args.type or None)


def add_progress(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--progress/--no-progress``: force progress bars on or off (default: on only on a terminal)."""
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bars on stderr (default: only when stderr is a terminal, so logs "
                             "get none)")


def progress_enabled(args: argparse.Namespace, stream: TextIO | None = None) -> bool:
    """``--progress``/``--no-progress`` if given, else whether ``stream`` (stderr) is a terminal."""
    forced = getattr(args, "progress", None)
    if forced is not None:
        return bool(forced)
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def quiet_library_bars() -> None:
    """Turn off huggingface_hub's own bars (hub downloads), the ones lmeb does not draw itself.

    transformers' checkpoint-loading bars are already off while lmeb loads a model
    (``lmeb.models.loading``) and sentence-transformers and bm25s are called without theirs.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read when huggingface_hub is imported
    hub = sys.modules.get("huggingface_hub.utils")
    if hub is not None:  # already imported: its switch
        hub.disable_progress_bars()


def reporter(args: argparse.Namespace) -> Any:
    """The command's ``lmeb.reporter.Reporter``: bars as ``progress_enabled`` decides (the libraries' own
    bars off when lmeb draws none), log lines on stderr."""
    from lmeb.reporter import Reporter

    bars = progress_enabled(args)
    if not bars:
        quiet_library_bars()
    return Reporter(bars=bars)
