"""The command-line reference as Markdown, generated from lmeb's real parser.

The documentation site's CLI page (``docs/reference/cli.md``) is filled in from this at build time
(``scripts/mkdocs_hooks.py``), so the reference can never drift from what ``lmeb COMMAND --help`` prints.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager

from lmeb.cli import COMMANDS, build_parser

WIDTH = 100  # help text is wrapped at a fixed width, whatever the terminal, so the page is reproducible


@contextmanager
def _columns(width: int) -> Iterator[None]:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def cli_markdown(heading_level: int = 2) -> str:
    """One section per ``lmeb`` command: its one-line summary and its full ``--help``, in registry order."""
    hashes = "#" * heading_level
    with _columns(WIDTH):
        parser = build_parser()
        commands = _subparsers(parser)
        parts = ["```text", parser.format_help().rstrip(), "```", ""]
        for name, (_, summary) in COMMANDS.items():
            if name not in commands:
                continue
            parts += [f"{hashes} lmeb {name}", "", summary[0].upper() + summary[1:] + ".", "",
                      "```text", commands[name].format_help().rstrip(), "```", ""]
    return "\n".join(parts)
