"""Every command and snippet of docs/hybrid.md: each ``lmeb`` line parsed by the real parser; the usage lines
(those reading ``$LMEB_DATA``) and the Python snippet run on the synthetic sample, the hub id of MiniLM
replaced by the packaged weights. The real-data measurement lines (``../shared``, ``/tmp/hybrid``) are
parse-only: they take minutes (docs/hybrid.md gives their output)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from doc_blocks import bodies

from lmeb.cli import build_parser
from lmeb.cli import main as cli

DOC = (Path(__file__).resolve().parents[1] / "docs" / "hybrid.md").read_text(encoding="utf-8")
HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def _blocks(language: str) -> list[str]:
    return bodies(DOC, language)


def _lmeb_lines() -> list[str]:
    return [line for block in _blocks("bash") for line in block.splitlines() if line.startswith("lmeb ")]


def test_every_lmeb_line_parses() -> None:
    lines = _lmeb_lines()
    assert len(lines) >= 10 and any("--fusion minmax" in line for line in lines)
    parser = build_parser()
    for line in lines:
        parser.parse_args(shlex.split(line)[1:])


@pytest.mark.slow
def test_usage_lines_and_snippet_run_on_the_sample(sample_data: Path, minilm_path: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LMEB_DATA", str(sample_data))
    monkeypatch.setenv("LMEB_CACHE", str(tmp_path / "cache"))
    ran = 0
    for line in _lmeb_lines():
        if "../shared" in line or "/tmp/hybrid" in line:  # the real-data measurement: by hand
            continue
        argv = shlex.split(line.replace("$LMEB_DATA", str(sample_data)).replace(HUB_ID, str(minilm_path)))[1:]
        assert cli(argv) == 0, line
        ran += 1
    assert ran >= 7 and (tmp_path / "results" / "hybrid_bm25__bm25_rrf" / "wo_inst" / "Proced_mem_bench.json").is_file()
    (snippet,) = _blocks("python")
    exec(compile(snippet.replace(HUB_ID, str(minilm_path)), "docs/hybrid.md", "exec"), {})
