"""The repository's top level: the README's set-up, the Makefile's install and leaderboard targets,
and the ``results/`` and ``leaderboard/`` folders (a tracked README each, generated contents ignored)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")


def _section(title: str) -> str:
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_setup_is_two_commands() -> None:
    first_block = _section("Set-up").split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in first_block.splitlines()]
    assert [c for c in commands if c] == ["make run", "make test"]


def _make_dry_run(*args: str) -> str:
    """The commands ``make install`` would run on a fresh machine (-B: as if nothing were installed)."""
    out = subprocess.run(["make", "-n", "-B", "-C", str(REPO), *args, "install"], capture_output=True, text=True,
                         check=True)
    return out.stdout


@needs_make
def test_torch_spec_override_and_the_documented_cpu_path() -> None:
    default = _make_dry_run()
    assert re.search(r"pip install .*torch==2\.13\.0\n", default)
    cpu = re.search(r'make run TORCH_SPEC="([^"]+)"', _section("Set-up"))
    assert cpu and "--index-url https://download.pytorch.org/whl/cpu" in cpu.group(1)
    lines = [line for line in _make_dry_run(f"TORCH_SPEC={cpu.group(1)}").splitlines() if "torch" in line]
    assert lines[0].endswith(cpu.group(1))  # torch first, alone, with the user's spec
    assert "-r requirements.txt" in _make_dry_run(f"TORCH_SPEC={cpu.group(1)}")


@pytest.mark.slow  # seconds of the hub's own start-up, for a documented line that rarely changes
def test_documented_hf_download_commands_are_shipped_by_the_pinned_hub() -> None:
    """Every ``hf download`` line of README.md and docs/ exists with the options it uses; no huggingface-cli."""
    docs = [README, *(p.read_text(encoding="utf-8") for p in sorted((REPO / "docs").rglob("*.md")))]
    assert not any("huggingface-cli" in text for text in docs)
    lines = [line for text in docs for line in text.splitlines() if line.startswith("hf download ")]
    if not lines:
        pytest.skip("no hf download line documented")
    hf = Path(sys.executable).with_name("hf")
    if not hf.exists():
        pytest.skip("the hf console script is not installed beside this python")
    usage = subprocess.run([str(hf), "download", "--help"], capture_output=True, text=True, check=True).stdout
    for line in lines:
        for option in re.findall(r"--[a-z-]+", line.split("#", 1)[0]):
            assert option in usage, line


@pytest.mark.parametrize("folder", ["results", "leaderboard"])
def test_top_level_folders_keep_only_their_readme(folder: str) -> None:
    readme = REPO / folder / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert "## Layout" in text and "## How it is produced" in text
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    check = ["git", "-C", str(REPO), "check-ignore", "-q", "--no-index"]
    assert subprocess.run([*check, f"{folder}/README.md"]).returncode == 1  # tracked
    for generated in ("bm25/wo_inst/LoCoMo.json", "site/index.html", "x.json"):
        assert subprocess.run([*check, f"{folder}/{generated}"]).returncode == 0  # ignored


@needs_make
@pytest.mark.slow
def test_make_leaderboard_builds_the_site_from_results(
    tmp_path: Path, write_results: Callable[..., list[Path]]
) -> None:
    results, site = tmp_path / "results", tmp_path / "site"
    write_results(results, "org/model", datasets=["LoCoMo"], scores=lambda task, i, sub: {"ndcg_at_10": 0.5})
    lmeb = f"{shlex.quote(sys.executable)} -m lmeb"
    # -o: the installed environment is taken as it is (this python), nothing is installed
    rc = subprocess.run(["make", "-C", str(REPO), "-o", ".venv/.installed-stamp", "leaderboard", f"LMEB={lmeb}",
                         f"RESULTS={results}", f"SITE={site}", "LEADERBOARD_ARGS=--no-figures"],
                        capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr
    assert (site / "index.html").is_file() and "org/model" in (site / "data.json").read_text()
