"""Bad input gets one line naming the file and line (data files) or the option (model arguments)."""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path

import pytest

from lmeb.data import reader as data
from lmeb.data.validate import validate
from lmeb.errors import DataError, LmebWarning

LOCOMO = Path("Dialogue/LoCoMo")


def _jsonl(path: Path, rows: list) -> None:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")


@pytest.mark.parametrize(("row", "message"), [
    ({"id": "q1", "text": ["a", "list"]}, "field 'text' must be a string, found a list"),
    ({"id": "q1", "text": 42}, "field 'text' must be a string, found a number"),
    ({"id": "q1", "text": None}, "field 'text' must be a string, found null"),
    ({"id": None, "text": "a query"}, "field 'id' must be a string or an integer, found null"),
    ({"id": ["q1"], "text": "a query"}, "field 'id' must be a string or an integer, found a list"),
    ({"id": True, "text": "a query"}, "field 'id' must be a string or an integer, found true/false"),
])
def test_query_fields_of_the_wrong_type_are_errors(tmp_path, row, message):
    path = tmp_path / "queries.jsonl"
    _jsonl(path, [{"id": "q0", "text": "fine"}, row])
    with pytest.raises(DataError, match=rf"^{path}:2: {message}$"):
        data.read_queries(path)


@pytest.mark.parametrize(("row", "message"), [
    ({"id": "d1", "title": "", "text": {"nested": 1}}, "field 'text' must be a string, found an object"),
    ({"id": "d1", "title": "T", "text": None}, "field 'text' must be a string, found null"),
    ({"id": "d1", "title": 3, "text": "body"}, "field 'title' must be a string, found a number"),
    ({"id": None, "title": "", "text": "body"}, "field 'id' must be a string or an integer, found null"),
    ({"id": 1.5, "title": "", "text": "body"}, "field 'id' must be a string or an integer, found a number"),
])
def test_corpus_fields_of_the_wrong_type_are_errors(tmp_path, row, message):
    path = tmp_path / "corpus.jsonl"
    _jsonl(path, [row])
    with pytest.raises(DataError, match=rf"^{path}:1: {message}$"):
        data.read_corpus(path)


def test_candidate_ids_must_be_ids(tmp_path):
    path = tmp_path / "candidates.jsonl"
    _jsonl(path, [{"scene_id": None, "candidate_doc_ids": ["d1"]}])
    with pytest.raises(DataError, match=rf"^{path}:1: field 'scene_id' must be a string or an integer"):
        data.read_candidates(path)
    _jsonl(path, [{"scene_id": "s", "candidate_doc_ids": ["d1", None]}])
    with pytest.raises(DataError, match="'candidate_doc_ids' must be a list of string or integer ids"):
        data.read_candidates(path)


def test_nul_bytes_are_named_not_a_codec(tmp_path):
    path = tmp_path / "queries.jsonl"
    path.write_bytes(b'{"id": "q0", "text": "fine"}\n{"id": "q1", "te\x00xt": "x"}\n')
    with pytest.raises(DataError, match=rf"^{path}:2: NUL bytes in the line"):
        data.read_queries(path)
    path.write_text('{"id": "q0", "text": "fine"}\n', encoding="utf-16")
    with pytest.raises(DataError, match=r"NUL bytes .*UTF-16") as err:
        data.read_queries(path)
    assert "utf-32" not in str(err.value)
    qrels = tmp_path / "qrels.tsv"
    qrels.write_bytes(b"q0\td\x001\t1\n")
    with pytest.raises(DataError, match=rf"^{qrels}:1: NUL bytes"):
        data.read_qrels(qrels)
    path.write_bytes(b'{"id": "q0", "text": "caf\xe9"}\n')  # Latin-1, not UTF-8
    with pytest.raises(DataError, match=rf"^{path}:1: not UTF-8 text"):
        data.read_queries(path)


def test_unreadable_paths_say_what_is_wrong(tmp_path):
    folder = tmp_path / "queries.jsonl"
    folder.mkdir()
    with pytest.raises(DataError, match=rf"^{folder}: is a directory, not a file$"):
        data.read_queries(folder)
    loop = tmp_path / "loop.jsonl"
    os.symlink(loop, loop)
    with pytest.raises(DataError, match=rf"^{loop}: symbolic link loop$"):
        data.read_queries(loop)
    broken = tmp_path / "broken.jsonl"
    os.symlink(tmp_path / "gone.jsonl", broken)
    with pytest.raises(DataError, match=rf"^{broken}: broken symbolic link \(to .*gone.jsonl\)$"):
        data.read_queries(broken)
    with pytest.raises(DataError, match=rf"^{tmp_path / 'none.jsonl'}: file not found$"):
        data.read_queries(tmp_path / "none.jsonl")


def test_validate_and_run_report_bad_text_with_file_and_line(sample_data, tmp_path, capsys):
    shutil.copytree(sample_data / LOCOMO, tmp_path / LOCOMO)
    corpus = tmp_path / LOCOMO / "corpus.jsonl"
    lines = corpus.read_text().splitlines()
    first = json.loads(lines[0])
    lines[0] = json.dumps({**first, "text": ["not", "a", "string"]})
    corpus.write_text("\n".join(lines) + "\n")
    report = validate(tmp_path)
    problem = next(p for p in report.errors if p.path == str(corpus))
    assert problem.line == 1 and "field 'text' must be a string, found a list" in problem.message
    from lmeb.cli import main as cli

    code = cli(["run", "--model", "bm25", "--tasks", "LoCoMo", "--data", str(tmp_path),
                "--output", str(tmp_path / "out"), "--no-cache", "--no-progress"])
    assert code == 2
    assert f"{corpus}:1: field 'text' must be a string, found a list" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ model arguments
ADAPTERS = ("st", "hf", "cross-encoder")


def _load(kind: str, path: Path, **options):
    from lmeb.models.registry import load_model

    with warnings.catch_warnings():
        if kind == "cross-encoder":  # MiniLM is a bi-encoder: these tests are about the arguments, not its head
            options.setdefault("allow_new_head", True)
            warnings.filterwarnings("ignore", ".*has no trained classification head", LmebWarning)
        return load_model(f"{kind}:{path}", **options)


@pytest.mark.parametrize("kind", ADAPTERS)
@pytest.mark.parametrize(("options", "message"), [
    ({"max_length": 0}, r"--max-length must be at least 1 token \(got 0\)"),
    ({"max_length": -1}, r"--max-length must be at least 1 token \(got -1\)"),
    ({"device": "cuda"}, r"device 'cuda' requested but CUDA is not available"),
    ({"device": "gpu"}, r"unknown device 'gpu'; use cpu, cuda, cuda:N or mps"),
])
def test_bad_model_arguments_fail_before_loading(kind, options, message, minilm_path):
    from lmeb.errors import LmebError

    torch = pytest.importorskip("torch")
    if "device" in options and torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    with pytest.raises(LmebError, match=message):
        _load(kind, minilm_path, **options)


@pytest.mark.parametrize("kind", ADAPTERS)
def test_max_length_past_the_model_limit(kind, minilm_path):
    from lmeb.errors import LmebError

    message = r"--max-length 1000 is past the limit of model .* \(512 tokens\); use at most 512"
    with pytest.raises(LmebError, match=message):
        _load(kind, minilm_path, max_length=1000)


def test_kalm_uses_the_same_device_check():
    from lmeb.errors import LmebError
    from lmeb.models.registry import load_reranker

    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    with pytest.raises(LmebError, match=r"^device 'cuda:0' requested but CUDA is not available"):
        load_reranker("KaLM-Embedding/KaLM-Reranker-V1-Nano", device="cuda:0")


@pytest.mark.parametrize(("template", "message"), [
    ("{0} {", "does not format"),
    ("Instruct: {name}", "names fields other than the instruction"),
    ("{} {0}", "does not format"),
    ("Instruct: no slot", "has no '{}': the instruction would be dropped"),
])
@pytest.mark.parametrize("kind", ["st", "hf"])
def test_instruction_template_must_hold_the_instruction(kind, template, message, minilm_path):
    from lmeb.errors import LmebError

    with pytest.raises(LmebError, match=re.escape(message)):
        _load(kind, minilm_path, instruction_template=template)


def test_cross_encoder_template_must_format(minilm_path):
    from lmeb.errors import LmebError

    with pytest.raises(LmebError, match="does not format"):
        _load("cross-encoder", minilm_path, instruction_template="{instruction} {query} {")


def test_empty_task_selection_is_an_error(sample_data, tmp_path, capsys):
    from lmeb.cli import main as cli

    code = cli(["run", "--model", "bm25", "--tasks", ",,", "--data", str(sample_data), "--output", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == "lmeb run: error: the task selection ',,' names no dataset; give e.g. LoCoMo,Gorilla/gorilla_tensor"


def test_cli_model_errors_are_one_line(minilm_path, tmp_path, sample_data, capsys):
    from lmeb.cli import main as cli

    for extra, message in ((["--max-length", "1000"], "past the limit"), (["--device", "cuda"], "CUDA is not"),
                           (["--instruction-template", "{0} {"], "does not format")):
        if extra[0] == "--device" and pytest.importorskip("torch").cuda.is_available():
            continue
        code = cli(["run", "--model", f"hf:{minilm_path}", "--tasks", "LoCoMo", "--data", str(sample_data),
                    "--output", str(tmp_path), "--no-cache", *extra])
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1, err
        assert lines[0].startswith("lmeb run: error: ") and message in lines[0], err


def test_token_budget_batches():
    from lmeb.models.hf import batches

    lengths = [100, 90, 50, 10, 10, 10, 10, 3]
    assert [list(b) for b in batches(lengths, 3)] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    got = [list(b) for b in batches(lengths, 3, max_tokens=200)]
    assert got == [[0, 1], [2, 3, 4, 5], [6, 7]]  # 2 x 100, 4 x 50 tokens; the short ones in a big batch
    assert [list(b) for b in batches([500, 5], 3, max_tokens=100)] == [[0], [1]]  # one text over the budget alone
    assert sum(len(b) for b in batches(lengths, 3, max_tokens=64)) == len(lengths)


@pytest.mark.slow
def test_hf_token_budget_gives_the_same_vectors(minilm_path):
    import numpy as np

    from lmeb.models.hf import HFEncoder

    texts = ["short", "a much longer text " * 20, "mid length text here", "x", "another one " * 5]
    fixed = HFEncoder(minilm_path, batch_size=2, device="cpu")
    budget = HFEncoder(minilm_path, batch_size=2, max_batch_tokens=64, device="cpu")
    np.testing.assert_allclose(budget.encode(texts, "document"), fixed.encode(texts, "document"), atol=2e-6)
    assert budget.config() == fixed.config()  # speed only: the cache key does not change
