"""Every command and snippet of README.md and docs/**/*.md runs in a test.

Each ``lmeb ...`` line of the documents' bash blocks is parsed by lmeb's real argument parser (so every
sub-command and flag it shows exists) and, where it can run here, executed as written on the synthetic
sample: ``~/lmeb-data/eval_data`` and ``$LMEB_DATA`` are the sample, and relative output folders land in a
temporary working directory that holds results files of the models the commands name. Lines that need weights,
servers or clusters this machine lacks are parse-only, each listed below with the reason; lines that run
other programs (make, hf, ray, ...) are skipped by rule. Every python block is executed in a fresh
namespace with ``LMEB_DATA`` pointing at the sample.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from doc_blocks import fenced_blocks

import lmeb
from lmeb.cli import build_parser
from lmeb.cli import main as cli

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
# README.md and the documentation site's pages: every command and snippet in them is tested here
DOCS = {str(p.relative_to(REPO)): p.read_text(encoding="utf-8")
        for p in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]}

# Programs other than lmeb that the README shows; their lines are not lmeb's to test.
NOT_LMEB = {
    "make": "the set-up entry points; tests/test_setup.py and CI run them",
    "hf": "downloads from the Hugging Face hub (no network here)",
    "pip": "installs packages",
    "ray": "starts Ray cluster nodes",
    ".venv/bin/python": "benchmark scripts (run by hand, minutes each)",
    "xdg-open": "opens a browser",
    "scripts/device_check.sh": "the GPU device check (tests/test_gpu_docs.py and test_device_check.py run it)",
    "source": "activates the virtual environment (tests/test_quickstart.py runs the quick start verbatim)",
    "export": "sets the environment (tests/test_quickstart.py runs the quick start verbatim)",
}

# Pages whose commands and snippets their own test runs (in an environment this one does not build): here
# their lmeb lines are parsed only.
TESTED_ELSEWHERE = {
    "docs/data.md": "tests/test_data_docs.py runs it against a local hub server",
    "docs/gpu.md": "tests/test_gpu_docs.py runs what a CPU can",
    "docs/results.md": "tests/test_identity.py runs it on a folder that mixes data sources",
    "docs/hybrid.md": "tests/test_hybrid_docs.py runs its snippet with the packaged MiniLM",
    "docs/reliability.md": "tests/test_docs_reliability.py runs it on the hostile input it describes",
    "docs/inspect.md": "tests/test_docs_inspect_growth.py runs it on the sample",
    "docs/growth.md": "tests/test_docs_inspect_growth.py runs it on the sample",
}

# README lines that are parsed but not run, with the reason.
PARSE_ONLY = {
    "lmeb run --model bm25 --reranker KaLM-Embedding/KaLM-Reranker-V1-Nano --rerank-top-k 100 --all "
    "--setting w_inst": "reranker weights from the hub",
    "lmeb run --model sentence-transformers/all-MiniLM-L6-v2 --reranker "
    "cross-encoder:/models/ms-marco-MiniLM-L6-v2 --tasks LoCoMo": "cross-encoder weights under /models",
    "lmeb run --model kalm:/models/KaLM-Reranker-V1-Nano --tasks LoCoMo": "reranker weights under /models",
    "lmeb run --model /models/e5-base --tasks LoCoMo,Gorilla/gorilla_tensor --setting w_inst --save-runs":
        "model weights under /models",
    "lmeb run --model hf:/models/my-encoder --pooling last --padding-side left --normalize --precision bf16 "
    "--all": "model weights under /models",
    "lmeb run --preset Qwen3-Embedding-0.6B --model-path /models/qwen3-0.6b --all --device cuda --batch-size 64":
        "model weights under /models and a GPU",
    "lmeb run --model bm25 --reranker kalm:/models/kalm-reranker --rerank-top-k 100 --tasks LoCoMo":
        "reranker weights under /models",
    "lmeb run --model mteb:intfloat/multilingual-e5-small --all": "model weights from the hub",
    "lmeb run --model openai:text-embedding-3-small --dimensions 512 --all": "the OpenAI API and a key",
    "lmeb run --model openai:bge-m3 --api-base http://127.0.0.1:8000/v1 --concurrency 8 --all":
        "a running embedding server (tests/test_openai_api.py runs one)",
    "lmeb run --preset Qwen3-Embedding-4B --all --ray": "model weights from the hub and GPUs",
    "lmeb run --model /models/e5 --all --ray": "a Ray cluster at HEAD:6379 and weights under /models",
    "lmeb run --model bm25 --reranker kalm:/models/kalm-reranker --all --ray --workers 8 --gpus-per-worker 1":
        "reranker weights under /models and 8 GPUs",
    "lmeb run --model mine:some-model --tasks LoCoMo --output results":
        "needs a package that declares the prefix installed (tests/test_model_plugins.py installs a toy one)",
    "lmeb run --model sentence-transformers/all-MiniLM-L6-v2 --type Dialogue --output results":
        "MiniLM over the 42 Dialogue subsets takes minutes on a CPU (make run and tests/test_models.py run it)",
}

# README lines that run here but take more than a few seconds, or that only vary a command the fast loop
# runs already (the views' own tests are fast: tests/test_report.py, test_instructions.py, test_efficiency.py).
# `make test-fast` still parses every line (test_every_lmeb_command_parses); `make test` runs them all.
SLOW = {
    "lmeb run --model bm25 --all --data ~/lmeb-data/eval_data --output results",  # 193 subsets
    "lmeb leaderboard results/",  # matplotlib figures
    "lmeb leaderboard runs_a/ runs_b/ --with-paper both --out site/ --title 'Our models on LMEB'",
    "lmeb table results/ --view datasets --metric R_cap_at_10 --format latex",
    "lmeb table results/ --view subsets --dataset LoCoMo --format csv",
    "lmeb table results/ --view instructions --with-paper w_inst",
    "lmeb table results/ --view efficiency",
    "lmeb compare my-model@w_inst my-model@wo_inst results/",
}


@dataclass(frozen=True)
class Command:
    line: int  # line where the command starts
    text: str  # the words, shell-quoted: the key of PARSE_ONLY and SLOW
    argv: list[str]  # the words, without leading VAR=value assignments
    file: str = "README.md"  # the document it is in

    @property
    def id(self) -> str:
        return f"{self.file}:L{self.line}:{' '.join(self.argv[:3])}"

    @property
    def where(self) -> str:
        return f"{self.file} line {self.line}"


def commands(text: str = README, file: str = "README.md") -> list[Command]:
    """Every command line of the bash blocks: backslash continuations joined, comments dropped."""
    out = []
    for lang, first, body in fenced_blocks(text):
        assert lang in ("bash", "python", "toml", "", "text"), f"{file} line {first}: a {lang} block no test knows"
        if lang != "bash":
            continue
        pending, start = "", first
        for n, raw in enumerate(body.splitlines(), first):
            if not pending:
                start = n
            if raw.rstrip().endswith("\\"):
                pending += raw.rstrip()[:-1] + " "
                continue
            line, pending = pending + raw, ""
            if re.match(r"\s*[A-Z_]+=\$\(", line):  # a shell variable set from a command: no program line
                continue
            words = shlex.split(line, comments=True)
            if not words:
                continue
            argv = words[next(i for i, w in enumerate(words) if not re.fullmatch(r"[A-Z_]+=\S*", w)):]
            out.append(Command(start, " ".join(shlex.quote(w) if re.search(r"[\\s'\"]", w) else w for w in argv), argv,
                               file))
    return out


ALL_COMMANDS = [c for file, text in DOCS.items() for c in commands(text, file)]
LMEB_COMMANDS = [c for c in ALL_COMMANDS if c.argv[0] == "lmeb"]
RUNNABLE = [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.text in SLOW else [])
            for c in LMEB_COMMANDS if c.text not in PARSE_ONLY and c.file not in TESTED_ELSEWHERE]


def test_every_command_line_is_lmeb_or_another_program_by_rule() -> None:
    assert len(LMEB_COMMANDS) >= 30  # the block parser found them
    for c in ALL_COMMANDS:
        assert c.argv[0] == "lmeb" or c.argv[0] in NOT_LMEB, f"{c.where}: {c.text!r} is not classified"
    texts = {c.text for c in LMEB_COMMANDS}
    for listed in (*PARSE_ONLY, *SLOW):  # the lists stay in step with the documents
        assert listed in texts, f"{listed!r} is no longer in README.md or docs/"


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    """lmeb's full parser, built once (each build takes tens of milliseconds; parsing leaves it unchanged)."""
    return build_parser()


@pytest.mark.parametrize("command", LMEB_COMMANDS, ids=lambda c: c.id)
def test_every_lmeb_command_parses(command: Command, parser: argparse.ArgumentParser,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    try:
        args = parser.parse_args(command.argv[1:])
    except SystemExit:
        pytest.fail(f"{command.where}: {command.text}\n{capsys.readouterr().err}")
    assert args.command == command.argv[1] and callable(args._main)


# --- running them on the sample -------------------------------------------------------------------------


def _scores(task, i: int, subset: str, model: str, setting: str) -> dict[str, float]:
    """Deterministic, model-dependent scores in [0.2, 0.8) (the values do not matter, only that they differ)."""
    base = zlib.crc32(f"{model}/{setting}/{task.name}/{subset}".encode()) % 600 / 1000 + 0.2
    return {"ndcg_at_10": base, "R_cap_at_10": min(1.0, base + 0.05), "recall_at_10": base, "mrr_at_10": base}


def _per_query(task, subset: str, model: str, setting: str) -> dict[str, float]:
    return {f"q{j}": zlib.crc32(f"{model}/{setting}/{task.name}/{subset}/{j}".encode()) % 1000 / 1000
            for j in range(6)}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, write_results) -> Path:
    """The results the README's table, diff, compare, export and leaderboard commands name: every dataset,
    with per-query values (written by the tests' one results factory)."""
    root = tmp_path_factory.mktemp("readme_workspace")
    runs = {"results": [("org/model-a", "wo_inst"), ("model-b", "wo_inst"), ("my-model", "wo_inst"),
                        ("my-model", "w_inst"), ("Qwen/Qwen3-Embedding-0.6B", "wo_inst"),
                        ("bm25", "wo_inst"), ("sentence-transformers/all-MiniLM-L6-v2", "wo_inst")],
            "runs_a": [("org/model-a", "wo_inst"), ("org/model-a", "w_inst")],
            "runs_b": [("model-b", "wo_inst")]}
    for folder, models in runs.items():
        for model, setting in models:
            write_results(root / folder, model, setting,
                          scores=lambda t, i, s, m=model, st=setting: _scores(t, i, s, m, st),
                          per_query=lambda t, s, m=model, st=setting: _per_query(t, s, m, st))
    return root


def _as_here(argv: list[str], sample: Path) -> list[str]:
    """The README's data path as it exists here (the sample)."""
    return [str(sample) if w == "~/lmeb-data/eval_data" else w for w in argv[1:]]


# Commands that write into the working directory run in a copy of the workspace; the others run in the
# workspace itself (no copy of its few hundred files per command) and must leave it exactly as it was.
WRITES_HERE = {"run", "export-mteb", "leaderboard"}


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time: what a command must not change."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.mark.parametrize("command", RUNNABLE)
def test_every_runnable_lmeb_command_runs_on_the_sample(
    command: Command, workspace: Path, sample_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = workspace
    if command.argv[1] in WRITES_HERE:
        work = tmp_path / "work"
        shutil.copytree(workspace, work)
    monkeypatch.chdir(work)
    monkeypatch.setenv("LMEB_DATA", str(sample_data))
    monkeypatch.setenv("LMEB_CACHE", str(tmp_path / "cache"))
    before = _tree(work)
    rc = cli(_as_here(command.argv, sample_data))
    out, err = capsys.readouterr()
    assert rc == 0, f"{command.where}: {command.text}\nexit {rc}\n{err}"
    after = _tree(work)
    assert out.strip() or set(after) - set(before), f"{command.where}: no output, no files"
    if work == workspace:
        assert after == before, f"{command.where}: changed the shared workspace (add it to WRITES_HERE)"
    if command.argv[1] == "run":  # results where the README says they go
        model = command.argv[command.argv.index("--model") + 1]
        assert list((work / "results" / model / "wo_inst").glob("*.json")), command.text


# --- python blocks --------------------------------------------------------------------------------------


def python_blocks() -> list[tuple[str, int, str]]:
    """("file: section title", line, code) of every python block of README.md and docs/."""
    out = []
    for file, text in DOCS.items():
        if file in TESTED_ELSEWHERE:
            continue
        for lang, line, body in fenced_blocks(text):
            if lang == "python":
                section = re.findall(r"^##? (.+)$", text[:text.index(body)], re.M)[-1]
                out.append((f"{file}: {section}", line, body))
    return out


def _check_custom_model(scope: dict, cwd: Path) -> None:
    res = scope["res"]
    assert isinstance(res, lmeb.Results) and len(res) == 2 and (cwd / "results" / "my-encoder").is_dir()
    assert len(res.table("datasets")) == 1 and len(res.scores) and len(res.per_query())  # what its comment names


def _check_tasks(scope: dict, cwd: Path) -> None:
    assert scope["tasks"] and {t.memory_type for t in scope["tasks"]} == {"Dialogue"}


def _check_own_prefix(scope: dict, cwd: Path) -> None:
    from lmeb.models.registry import _LOADERS

    try:
        res = scope["res"]
        assert [(r.model, r.task_name) for r in res] == [("256", "LoCoMo")] and len(res.scores)
        assert "BagOfWords" in str(res[0].provenance)  # its config() is the model's identity
    finally:
        _LOADERS.pop("mine", None)  # the snippet's prefix stays in its test


def _check_options(scope: dict, cwd: Path) -> None:
    res = scope["res"]
    assert scope["options"].rerank_top_k == 50 and res.summaries[0].subsets_run == 1
    assert res[0].path == Path("results/bm25/wo_inst/LoCoMo.json") and (cwd / res[0].path).is_file()


CHECKS = {"README.md: Evaluate your own model": _check_custom_model,
          "docs/guide/python.md: Python API": _check_custom_model, "docs/guide/tasks.md: Tasks": _check_tasks,
          "docs/guide/running.md: Add your own model prefix": _check_own_prefix,
          "docs/guide/python.md: Options, reporter and cache": _check_options}


def test_every_python_block_has_a_check() -> None:
    assert sorted(section for section, _, _ in python_blocks()) == sorted(CHECKS)


@pytest.mark.parametrize("section,line,code", [pytest.param(*b, id=f"L{b[1]}:{b[0]}") for b in python_blocks()])
def test_every_python_block_runs(section: str, line: int, code: str, sample_data: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMEB_DATA", str(sample_data))
    monkeypatch.setenv("LMEB_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    scope: dict = {"__name__": "__readme__"}
    exec(compile("\n" * (line - 1) + code, section.split(":")[0], "exec"), scope)  # tracebacks name the line
    CHECKS[section](scope, tmp_path)


def test_custom_model_example_comes_first_and_is_short() -> None:
    assert README.index("## Evaluate your own model") < README.index("## The flow")  # before the module map
    code = next(code for section, _, code in python_blocks() if section == "README.md: Evaluate your own model")
    assert len(code.strip().splitlines()) <= 16


def test_the_flow_table_names_every_module() -> None:
    """Every folder of lmeb/ has its row in the README's "The flow" table, and every module its place in it."""
    table = README[README.index("## The flow"):]
    rows = {line.split("|")[1].strip().strip("`"): line for line in table.splitlines() if line.startswith("| `lmeb/")}
    lmeb_dir = REPO / "lmeb"
    for path in sorted(lmeb_dir.glob("*.py")):
        if path.stem not in ("__init__", "__main__"):
            assert f"`{path.name}`" in rows["lmeb/"], f"lmeb/{path.name} is not in the README's flow table"
    for package in sorted(p for p in lmeb_dir.iterdir() if (p / "__init__.py").is_file()):
        assert f"lmeb/{package.name}/" in rows, f"lmeb/{package.name}/ has no row in the README's flow table"
        if package.name == "cli":
            continue  # one module per command (lmeb COMMAND --help)
        for path in sorted(package.glob("*.py")):
            if path.stem != "__init__":
                assert f"`{path.name}`" in rows[f"lmeb/{package.name}/"], f"{path} is not in its row"


def test_every_python_name_the_readme_mentions_exists() -> None:
    """`lmeb.x.y` in the prose (``lmeb.data.reader.download``, ``lmeb.report.views.build_table``...) imports."""

    names = sorted({name for text in DOCS.values() for name in re.findall(r"`(lmeb(?:\.\w+)+)", text)})
    assert "lmeb.evaluate" in names and "lmeb.data.hub.download" in names
    code = ("import sys, lmeb, functools\n"
            "for name in sys.argv[1:]:\n"
            "    try: functools.reduce(getattr, name.split('.')[1:], lmeb)\n"
            "    except AttributeError: print(name)\n")
    out = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, check=True).stdout
    assert not out.split(), f"README.md or docs/ name these, which do not resolve after a bare import lmeb: {out}"



def test_every_toml_block_parses_and_names_a_loader() -> None:
    """The pyproject snippets (the ``lmeb.models`` entry point) are valid TOML whose loaders are module:function."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    found = [(file, tomllib.loads(body)) for file, text in DOCS.items() for lang, _, body in fenced_blocks(text)
             if lang == "toml"]
    assert found
    for file, parsed in found:
        loaders = parsed["project"]["entry-points"]["lmeb.models"]
        assert loaders and all(re.fullmatch(r"[\w.]+:\w+", v) for v in loaders.values()), file
