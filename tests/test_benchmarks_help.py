"""Every benchmark script answers ``--help`` with its whole description, never one cut mid-sentence."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("bench_*.py"))


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_help_shows_the_whole_first_paragraph(script: Path) -> None:
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    assert doc, f"{script.name}: no module docstring to describe it"
    proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    words = " ".join(proc.stdout.split())
    first_paragraph = " ".join(doc.split("\n\n")[0].split())
    assert first_paragraph in words, f"{script.name} --help does not show: {first_paragraph!r}"
