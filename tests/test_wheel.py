"""The wheel works as a new user gets it: built from the sources, installed into a fresh venv, run elsewhere.

The venv gets no network and no editable install: the wheel is installed with ``--no-deps --no-index``
and the test venv's site-packages are appended to its path by a ``.pth`` line (a folder named there is
not a site directory, so the editable install's own ``.pth`` hook does not run in it). The tests assert
that the ``lmeb`` they run is the wheel's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

# top-level folders that are not sources (lmeb/results is: these names are ignored at the root only), and
# names that are never sources at any depth
_NOT_SOURCES = (".git", ".venv", ".cache", "results", "build", "dist", "site")
_NEVER_SOURCES = shutil.ignore_patterns("*.egg-info", "__pycache__")


def _not_sources(folder: str, names: list[str]) -> set[str]:
    root = {n for n in names if n in _NOT_SOURCES} if Path(folder) == REPO else set()
    return root | _NEVER_SOURCES(folder, names)


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(wheel file, the venv's python, an environment without the checkout on any path)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO, src, ignore=_not_sources)  # builds leave the checkout alone
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LMEB_TASKS_DIR", "VIRTUAL_ENV")}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(root / "dist"), str(src)], root, env)
    (wheel,) = (root / "dist").glob("lmeb-*.whl")

    target = root / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root, env)
                .strip())
    ours = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "test_site_packages.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], root, env)
    return wheel, python, env


@pytest.mark.slow
def test_wheel_ships_every_runtime_file(wheel_env: tuple[Path, Path, dict[str, str]]) -> None:
    """Every module, every non-Python file of the package and every task YAML is in the wheel."""
    wheel, _, _ = wheel_env
    names = set(zipfile.ZipFile(wheel).namelist())
    package_files = [p for p in (REPO / "lmeb").rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")]
    expected = {p.relative_to(REPO).as_posix() for p in package_files}
    expected |= {"lmeb/registry/" + p.relative_to(REPO / "tasks").as_posix() for p in (REPO / "tasks").glob("*/*.yaml")}
    assert len(expected) > 22
    assert sorted(expected - names) == []
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "lmeb").rglob("*.py")}  # every module, every folder
    assert {"lmeb/results/dataset_result.py", "lmeb/cli/__init__.py"} <= modules and sorted(modules - names) == []


@pytest.mark.slow
def test_installed_wheel_runs_outside_the_repository(wheel_env: tuple[Path, Path, dict[str, str]],
                                                      tmp_path: Path) -> None:
    _, python, env = wheel_env
    where = _run([str(python), "-c", "import lmeb, lmeb.tasks.registry as t; print(lmeb.__file__); print(t.TASKS_DIR)"],
                 tmp_path, env).split()
    venv_dir = python.parent.parent
    assert Path(where[0]).is_relative_to(venv_dir), where  # the wheel's lmeb, not the checkout's
    assert Path(where[1]).is_relative_to(venv_dir) and Path(where[1]).name == "registry"

    lmeb = str(python.parent / "lmeb")
    datasets = [json.loads(line) for line in _run([lmeb, "tasks", "--json"], tmp_path, env).splitlines()]
    assert len(datasets) == 22
    assert sum(len(d["subsets"]) for d in datasets) == 193

    # the other files read at run time: paper tables, presets, published statistics, leaderboard assets
    _run([str(python), "-c", "from lmeb.report.paper import paper_rows; from lmeb.models.presets import presets;"
          "from lmeb.data.stats import published_stats; from lmeb.tasks.registry import get_task;"
          "from lmeb.leaderboard import site;"
          "assert paper_rows('w_inst') and presets() and published_stats(get_task('LoCoMo'));"
          "assert site.render_html({'title': 't'})"], tmp_path, env)

    _run([lmeb, "sample", str(tmp_path / "data"), "--seed", "0"], tmp_path, env)
    _run([lmeb, "run", "--model", "bm25", "--all", "--data", str(tmp_path / "data"),
          "--output", str(tmp_path / "results"), "--no-cache", "--no-progress"], tmp_path, env)
    folder = tmp_path / "results" / "bm25" / "wo_inst"
    assert {f"{d['name']}.json" for d in datasets} <= {p.name for p in folder.glob("*.json")}
    gorilla = json.loads((folder / "Gorilla.json").read_text())
    gorilla_subsets = next(d["subsets"] for d in datasets if d["name"] == "Gorilla")
    assert len(gorilla["scores"]["test"]) == len(gorilla_subsets) == 3


def test_tasks_dir_override_and_checkout_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``$LMEB_TASKS_DIR`` wins; without it a checkout (no ``lmeb/registry``) reads the top-level ``tasks/``."""
    from lmeb.tasks.registry import all_tasks, tasks_dir

    monkeypatch.delenv("LMEB_TASKS_DIR", raising=False)
    assert tasks_dir() == REPO / "tasks"
    shutil.copytree(REPO / "tasks" / "dialogue", tmp_path / "dialogue")
    monkeypatch.setenv("LMEB_TASKS_DIR", str(tmp_path))
    assert tasks_dir() == tmp_path
    assert len(all_tasks(tasks_dir())) == 6
