"""Output folders under faults (issue 19): a leaderboard build killed between its two renames leaves the
previous site aside, and the next build restores it; ``leaderboard --out``, ``export-mteb OUT`` and
``sample OUT`` on a read-only folder, a pseudo-filesystem or an existing file are one line, as ``run`` is."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import lmeb.leaderboard.site as leaderboard
from lmeb import files
from lmeb.cli import main as cli_main


def run_cli(*argv: object) -> int:
    return cli_main([str(a) for a in argv])


@pytest.fixture
def results(write_results, tmp_path: Path) -> Path:
    write_results(tmp_path / "res", "m", datasets=["Gorilla"], scores=lambda task, i, sub: {"ndcg_at_10": 0.5})
    return tmp_path / "res"


def _killed_between_renames(site: Path) -> None:
    """The state a kill -9 between ``_swap``'s two renames leaves: the old site renamed aside as
    ``.<site>.old-*``, the new one still in its ``.tmp-`` folder, nothing at ``site``."""
    os.replace(site, site.parent / f".{site.name}.old-abc123")
    (site.parent / f".{site.name}.tmp-def456").mkdir(exist_ok=True)


def test_kill_between_the_two_renames_is_repaired(results, tmp_path):
    site = tmp_path / "site"
    assert run_cli("leaderboard", results, "--out", site, "--no-figures") == 0
    before = (site / "data.json").read_text()
    _killed_between_renames(site)
    assert leaderboard.restore_site(site) is not None  # what a build (or a reader) calls first
    assert (site / "data.json").read_text() == before and not list(tmp_path.glob(".site.old-*"))
    _killed_between_renames(site)
    assert run_cli("leaderboard", results, "--out", site, "--no-figures") == 0  # the next build
    assert (site / "index.html").is_file() and not list(tmp_path.glob(".site.old-*"))
    assert leaderboard.restore_site(site) is None  # nothing to restore when the site is there


def _blocked(tmp_path: Path) -> dict[str, Path]:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    (tmp_path / "a-file").write_text("x")
    return {"read_only": ro / "out", "proc": Path("/proc/self/lmeb-out"), "file": tmp_path / "a-file"}


@pytest.mark.parametrize("where", ["read_only", "proc", "file"])
@pytest.mark.parametrize("command", ["leaderboard", "export-mteb", "sample"])
def test_unwritable_outputs_are_one_line(command, where, results, tmp_path, capsys, monkeypatch):
    out = _blocked(tmp_path)[where]
    if where == "read_only" and os.geteuid() == 0:  # root writes into read-only folders: the kernel's answer
        def denied(*args: object, **kwargs: object) -> None:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(files.tempfile, "mkstemp", denied)
    argv = {"leaderboard": ("leaderboard", results, "--out", out, "--no-figures"),
            "export-mteb": ("export-mteb", results, out, "--allow-incomplete"),
            "sample": ("sample", out)}[command]
    try:
        code = run_cli(*argv)
    finally:
        (tmp_path / "ro").chmod(stat.S_IRWXU)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and (str(out) in errors[0] or str(out.parent) in errors[0]), err
    assert "cannot write" in errors[0] or "exists and is not a leaderboard site" in errors[0], err
