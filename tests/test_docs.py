"""The documentation site builds with ``mkdocs build --strict`` and its CLI reference is the real parser's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmeb.cli import COMMANDS, build_parser
from lmeb.cli.reference import cli_markdown

REPO = Path(__file__).resolve().parents[1]


def test_cli_reference_has_every_command_with_its_real_help() -> None:
    text = cli_markdown()
    parser = build_parser()
    for name in COMMANDS:
        assert f"## lmeb {name}\n" in text, name
    run_help = next(a for a in parser._actions if a.dest == "command").choices["run"].format_help()
    for option in ("--model", "--tasks", "--setting", "--output"):  # the options as the parser has them
        assert option in run_help and option in text


def test_every_nav_page_exists() -> None:
    import yaml

    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))

    def pages(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [p for item in node for p in pages(item)]
        if isinstance(node, dict):
            return [p for value in node.values() for p in pages(value)]
        return []

    found = pages(config["nav"])
    assert "reference/cli.md" in found and "reference/api.md" in found
    for page in found:
        assert (REPO / "docs" / page).is_file(), page


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    """The whole site, API pages from the docstrings and the generated CLI page, with warnings as errors."""
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cli_page = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "lmeb export-mteb" in cli_page and "--rerank-top-k" in cli_page
    api_page = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert "rerank_top_k" in api_page and "load_results" in api_page
