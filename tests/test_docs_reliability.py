"""Every ``lmeb`` command of docs/reliability.md runs here, on the hostile input it describes, with the exit
code its ``# exit N`` comment states (0 when none); ``parse-only`` lines are parsed by the real parser only.

Placeholders: DATA is a copy of the sample's Gorilla with one bad qrels score (so ``validate`` has
something to report), OUT a fresh results folder, CACHE an embedding cache whose ``index.json`` is
damaged, ``./evilmodel`` a model folder whose own code would write a marker file if it ever ran."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
from doc_blocks import bodies

from lmeb.cli import build_parser
from lmeb.cli import main as cli_main
from lmeb.embeddings.store import EmbeddingStore, namespace_key
from tests.test_embeddings import HashEncoder

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"


def doc_commands() -> list[tuple[str, int | None]]:
    """(command, expected exit code or None for parse-only) for each lmeb line of the bash blocks."""
    out = []
    for block in bodies(DOC.read_text(encoding="utf-8"), "bash"):
        for line in block.splitlines():
            command, _, comment = line.partition("#")
            if "lmeb " not in command:
                continue
            code = re.search(r"exit (\d+)", comment)
            out.append((command.strip(), None if "parse-only" in comment else int(code.group(1)) if code else 0))
    return out


def test_the_doc_has_commands():
    assert len(doc_commands()) >= 8


@pytest.fixture
def world(sample_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    data = tmp_path / "data"
    shutil.copytree(sample_data / "Procedural" / "Gorilla", data / "Procedural" / "Gorilla")
    qrels = data / "Procedural" / "Gorilla" / "gorilla_tensor" / "qrels.tsv"
    rows = qrels.read_text().splitlines()
    qrels.write_text("\n".join([*rows[:-1], rows[-1].rsplit("\t", 1)[0] + "\t1_0"]) + "\n")
    cache = tmp_path / "cache"
    enc = HashEncoder()
    EmbeddingStore(enc, cache_dir=cache).embed(["a", "b"], "document")
    index = cache / "embeddings" / namespace_key(enc.config(), "document", None) / "index.json"
    index.write_text(json.dumps({"meta": [1], "shards": {"../../victim": {}}}))
    evil = tmp_path / "evilmodel"
    evil.mkdir()
    (evil / "config.json").write_text(json.dumps({"auto_map": {"AutoModel": "modeling_evil.EvilModel"}}))
    (evil / "modeling_evil.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').write('ran')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return {"DATA": data, "OUT": tmp_path / "out", "CACHE": cache, "tmp": tmp_path}


def test_doc_commands_in_order(world, monkeypatch, capsys):
    """In the doc's order, on one world: ``cache verify``, ``prune``, ``verify`` again see each other's work."""
    for command, code in doc_commands():
        words = shlex.split(command)
        with monkeypatch.context() as env:
            while "=" in words[0]:  # VAR=value prefixes
                name, value = words.pop(0).split("=", 1)
                env.setenv(name, value)
            assert words[0] == "lmeb"
            argv = [str(world.get(w, w)) for w in words[1:]]
            build_parser(argv[0]).parse_args(argv)
            if code is None:
                continue
            assert cli_main(argv) == code, (command, capsys.readouterr())
        err = capsys.readouterr().err
        assert "Traceback" not in err and not (world["tmp"] / "ran").exists(), (command, err)
