"""MkDocs hooks of the documentation site (``mkdocs.yml``: ``hooks``).

A page holding the marker ``<!-- lmeb-cli-reference -->`` gets the CLI reference generated from lmeb's
real parser (``lmeb.cli.reference``) in its place.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- lmeb-cli-reference -->"


def on_page_markdown(markdown: str, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    from lmeb.cli.reference import cli_markdown

    return markdown.replace(MARKER, cli_markdown())
