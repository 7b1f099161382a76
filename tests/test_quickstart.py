"""The README's quick start, run verbatim in a fresh copy of the repository after ``make run``.

The copy holds the files git tracks (and untracked ones it does not ignore), as a clone would, with the
repository's installed ``.venv`` linked in (``make -o`` keeps make from reinstalling it), so ``make run``
does what it does on a fresh machine after its install step: the synthetic sample, BM25 and MiniLM.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from doc_blocks import bodies

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)  # the environment running the tests (make test: .venv), as make run would have installed


def quick_start(readme: str) -> str:
    section = readme.split("## Quick start\n", 1)[1].split("\n## ", 1)[0]
    return bodies(section, "bash")[0]


def _fresh_copy(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    (dest / ".venv").symlink_to(VENV)
    return dest


def test_the_quick_start_is_one_bash_block_of_lmeb_lines() -> None:
    block = quick_start((REPO / "README.md").read_text(encoding="utf-8"))
    words = [line.split()[0] for line in block.splitlines() if line.strip()]
    assert words[0] == "source" and words.count("lmeb") >= 6 and set(words) <= {"source", "lmeb", "export"}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None or shutil.which("git") is None, reason="make and git needed")
def test_quick_start_runs_verbatim_after_make_run(tmp_path: Path) -> None:
    if not (VENV / "bin" / "lmeb").exists() or not (REPO / ".git").exists():
        message = f"needs an installed environment ({VENV} has no bin/lmeb) and the git checkout"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):  # CI runs it, never skips it
            pytest.fail(message)
        pytest.skip(message)
    work = _fresh_copy(tmp_path / "lmeb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LMEB_", "VIRTUAL_ENV"))}
    stamp = ".venv/.installed-stamp"
    make = subprocess.run(["make", "-o", stamp, "run"], cwd=work, env=env, capture_output=True, text=True,
                          timeout=1200)
    assert make.returncode == 0, make.stdout[-3000:] + make.stderr[-3000:]
    assert (work / ".cache" / "sample_data").is_dir() and (work / ".cache" / "lmeb").is_dir()
    block = quick_start((work / "README.md").read_text(encoding="utf-8"))
    proc = subprocess.run(["bash", "-e", "-c", block], cwd=work, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "LMEB: ndcg_at_10 (%) per dataset" in out and "LMEB: N@10 and R@10 (%) per memory type" in out
    assert out.count("sentence-transformers/all-MiniLM-L6-v2  wo_inst") == 2  # both tables, both models
    assert "Dialogue: 6 datasets, 42 tasks" in out  # lmeb tasks --type Dialogue
    assert "LoCoMo/single_hop" in out  # lmeb stats found make run's sample through LMEB_DATA
    assert ".cache/lmeb: 2 namespaces" in out  # lmeb cache info found make run's cache through LMEB_CACHE
    assert "LoCoMo   0/5 (5 kept)" in out  # the rerun kept every subset
    assert "bm25 (A) vs sentence-transformers/all-MiniLM-L6-v2 (B)" in out and "193 subsets of 22 datasets" in out
