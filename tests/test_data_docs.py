"""docs/data.md runs as written: every ``lmeb`` line of its bash blocks (in order; a line whose comment says
``error`` must fail with exit code 2) and every python block, against a local hub server serving the
synthetic sample as ``KaLM-Embedding/LMEB`` and its ReMe as ``mteb/ReMe`` (at the revision mteb pins), with
``HOME`` and the working directory in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from doc_blocks import blocks, steps
from hub_server import HubServer, Repo

from lmeb.cli import main as lmeb_main

DOC = Path(__file__).resolve().parents[1] / "docs" / "data.md"


def test_the_doc_shows_lmeb_commands_and_python() -> None:
    kinds = [lang for lang, _ in blocks(DOC.read_text(encoding="utf-8"))]
    assert kinds.count("bash") >= 3 and kinds.count("python") == 2


@pytest.mark.slow  # fetches ~800 small files and imports mteb
def test_every_command_and_snippet_of_docs_data_md(sample_data: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets.config
    import huggingface_hub.constants as constants

    from lmeb.data.mteb_convert import to_mteb
    from lmeb.tasks.registry import get_task

    official = Repo()
    official.commit({f"eval_data/{p.relative_to(sample_data).as_posix()}": p.read_bytes()
                     for folder in ("Procedural", "Dialogue/LoCoMo", "Dialogue/MemBench")
                     for p in sorted((sample_data / folder).rglob("*")) if p.is_file()})
    reme = to_mteb(get_task("ReMe"), sample_data, tmp_path / "mteb-build")
    mteb_reme = Repo(lfs=(".parquet",))
    mteb_reme.commit({p.relative_to(reme).as_posix(): p.read_bytes() for p in sorted(reme.rglob("*")) if p.is_file()},
                     sha=get_task("ReMe").mteb_revision)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
    monkeypatch.delenv("LMEB_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    ran = 0
    with HubServer({"KaLM-Embedding/LMEB": official, "mteb/ReMe": mteb_reme}, max_requests=20000) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        for kind, text, argv in steps(DOC.read_text(encoding="utf-8")):
            if kind == "python":
                exec(compile(text, f"{DOC}:python", "exec"), {})
            else:
                assert lmeb_main(argv) == (2 if "# error" in text else 0), text
            ran += 1
    assert ran == 10
    assert (tmp_path / "home/.cache/lmeb/data/eval_data/Dialogue/LoCoMo/corpus.jsonl").is_file()  # fetched on run
    assert (tmp_path / "home/lmeb-data/eval_data/ReMe/README.md").is_file()  # mteb's copy
    assert (work / "rebuilt/Procedural/ReMe").is_dir() and (work / "results-mteb/bm25/wo_inst/Gorilla.json").is_file()
