"""The ``lmeb`` command line: one sub-command per step of the flow, each in its own module.

Each module under ``lmeb.cli`` exposes ``add_arguments(parser)`` and ``main(args) -> int`` and imports
heavy libraries (torch, transformers) only inside ``main``, so ``lmeb tasks`` starts instantly. Its module
docstring, whole, is the command's ``--help`` description. Options shared by several commands (what to
select, progress bars) come from ``lmeb.cli.options``.
Errors the user can fix (``LmebError``) print as one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import warnings
from typing import Any

from lmeb import __version__
from lmeb.errors import LmebError, LmebWarning

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "tasks": ("lmeb.cli.tasks", "list the LMEB datasets and subsets"),
    "validate": ("lmeb.cli.validate", "check data files in the official layout"),
    "stats": ("lmeb.cli.stats", "per-subset statistics, optionally against the published ones"),
    "sample": ("lmeb.cli.sample", "write a small synthetic dataset tree in the official layout"),
    "presets": ("lmeb.cli.presets", "list the paper models' official settings (--preset NAME) and their aliases"),
    "run": ("lmeb.cli.run", "evaluate a model on LMEB and write results files"),
    "table": ("lmeb.cli.table", "tables from results files (paper layout, per dataset, per subset)"),
    "diff": ("lmeb.cli.diff", "cell-by-cell deltas between a run and a published model"),
    "compare": ("lmeb.cli.compare", "paired per-query comparison of two models"),
    "inspect": ("lmeb.cli.inspection", "per-query view: texts, relevant documents, what a model retrieved"),
    "leaderboard": ("lmeb.cli.leaderboard", "write the static leaderboard site"),
    "export-mteb": ("lmeb.cli.export_mteb", "write results in the mteb results-repository layout"),
    "cache": ("lmeb.cli.cache", "see, verify and repair the embedding cache"),
    "convert": ("lmeb.cli.convert", "write LMEB data in mteb's HF-datasets format, or back to the official layout"),
    "download": ("lmeb.cli.download", "fetch LMEB datasets from the Hugging Face hub (official or mteb's copies)"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``only``, import just that command's module (the others stay unloaded,
    so ``lmeb tasks`` does not pay for pandas or torch; ``only=""`` imports none, for the top-level help)."""
    parser = argparse.ArgumentParser(prog="lmeb", description="LMEB, the Long-horizon Memory Embedding Benchmark.")
    parser.add_argument("--version", action="version", version=f"lmeb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue  # a command not built yet is simply not offered
        cmd = sub.add_parser(name, help=help_text, description=describe(mod.__doc__ or help_text),
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(cmd)
        cmd.set_defaults(_main=mod.main)
    return parser


def describe(doc: str) -> str:
    """A module docstring as a ``--help`` description: all of it (never cut mid-sentence), without the
    reStructuredText double backticks."""
    return inspect.cleandoc(doc).replace("``", "")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else "")  # top-level help: no command imported
    args = parser.parse_args(argv)
    if not getattr(args, "_main", None):
        parser.print_help()
        return 2
    _one_line_warnings(args.command)
    try:
        return int(args._main(args) or 0)
    except LmebError as exc:
        print(f"lmeb {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lmeb {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _one_line_warnings(command: str) -> None:
    """Print lmeb's own warnings as ``lmeb COMMAND: warning: ...`` (no source line); others as usual."""
    default = warnings.showwarning

    def show(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        if issubclass(category, LmebWarning):
            print(f"lmeb {command}: warning: {message}", file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


if __name__ == "__main__":
    sys.exit(main())
