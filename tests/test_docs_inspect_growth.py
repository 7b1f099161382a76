"""Every command and snippet of docs/inspect.md and docs/growth.md runs, on the synthetic sample.

``DATA`` is the sample, ``MINILM`` the packaged all-MiniLM-L6-v2, relative paths land in a temporary
working directory; the blocks of a page run in order, so the runs it shows exist when it inspects them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from doc_blocks import steps

from lmeb.cli import main as cli

REPO = Path(__file__).resolve().parents[1]
@pytest.mark.slow
@pytest.mark.parametrize("page", ["inspect.md", "growth.md"])
def test_doc_commands_run(page: str, sample_data: Path, minilm_path: Path, tmp_path: Path, monkeypatch,
                          capsys) -> None:
    monkeypatch.chdir(tmp_path)
    ran = 0
    text = (REPO / "docs" / page).read_text(encoding="utf-8")
    for kind, body, args in steps(text.replace("MINILM", str(minilm_path)).replace("DATA", str(sample_data))):
        if kind == "python":
            exec(compile(body, f"{page} snippet", "exec"), {})
        else:
            if args[0] == "run":
                args += ["--cache-dir", str(tmp_path / "cache"), "--no-progress"]
            assert cli(args) == 0, body
        ran += 1
    assert ran >= 4
    capsys.readouterr()
