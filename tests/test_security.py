"""Security rules (issue 19, docs/reliability.md): no model code runs without consent, no credential is
recorded, no spreadsheet formula passes through a CSV, no name read from a file or option leaves its folder.
Each test injects the hostile input and checks what reaches the disk."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lmeb.cli import main as cli_main
from lmeb.embeddings.store import EmbeddingStore, namespace_key
from lmeb.errors import LmebError
from lmeb.models.registry import load_model
from lmeb.safety import csv_cell, redact_url, safe_name
from tests.test_embeddings import HashEncoder

EVIL_CODE = "import pathlib\npathlib.Path({marker!r}).write_text('ran')\n"


def run_cli(*argv: object) -> int:
    return cli_main([str(a) for a in argv])


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def evil_model(tmp_path: Path) -> tuple[Path, Path]:
    """A model folder whose ``auto_map`` names its own configuration and modeling files, which would write
    ``marker`` if imported."""
    folder, marker = tmp_path / "evilmodel", tmp_path / "evil-code-ran"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "evil", "architectures": ["EvilModel"],
        "auto_map": {"AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "modeling_evil.EvilModel"}}))
    for name in ("configuration_evil.py", "modeling_evil.py"):
        (folder / name).write_text(EVIL_CODE.format(marker=str(marker)))
    return folder, marker


# ------------------------------------------------------------------------------------------- remote code
@pytest.mark.parametrize("preset", ["KaLM_Embedding_V2.5", "jina-embeddings-v5-text-nano-retrieval", "NV-Embed-v2"])
def test_preset_needing_remote_code_is_refused_without_consent(preset, evil_model, sample_data, tmp_path, capsys):
    folder, marker = evil_model
    code = run_cli("run", "--preset", preset, "--model-path", folder, "--tasks", "Gorilla", "--data", sample_data,
                   "--output", tmp_path / "out", "--no-cache", "--no-progress")
    line = one_error_line(capsys)
    assert code == 2 and str(folder) in line and "--trust-remote-code" in line and "trust_remote_code=True" in line
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("spec", ["hf:{folder}", "{folder}", "cross-encoder:{folder}", "kalm:{folder}"])
def test_local_model_with_its_own_code_is_refused(spec, evil_model):
    folder, marker = evil_model
    with pytest.raises(LmebError, match=r"needs the Python code shipped with .*evilmodel.*--trust-remote-code"):
        load_model(spec.format(folder=folder))
    assert not marker.exists()


def test_python_trust_remote_code_false_is_refused_too(evil_model):
    folder, marker = evil_model
    with pytest.raises(LmebError, match="trust_remote_code=True in Python"):
        load_model(preset="NV-Embed-v2", model_path=folder, trust_remote_code=False)
    assert not marker.exists()


def test_consent_reaches_the_loader(evil_model, monkeypatch):
    """With --trust-remote-code the preset's setting goes to HFEncoder (the loader itself is stubbed here:
    the point is that the refusal is gone and True is passed, not to run the evil code)."""
    import lmeb.models.hf as hf

    seen = {}

    def fake_init(self, path, **options):
        seen.update(options, path=str(path))

    monkeypatch.setattr(hf.HFEncoder, "__init__", fake_init)
    folder, _ = evil_model
    load_model(preset="KaLM_Embedding_V2.5", model_path=folder, trust_remote_code=True)
    assert seen["trust_remote_code"] is True and seen["path"] == str(folder)
    load_model(preset="bge-m3", model_path=folder)  # a preset that needs no remote code: False, no refusal
    assert seen["trust_remote_code"] is False


def test_mteb_loader_that_passes_trust_remote_code_is_refused():
    pytest.importorskip("mteb")
    from lmeb.models.mteb_model import MtebEncoder

    with pytest.raises(LmebError, match=r"mteb:jinaai/jina-embeddings-v3 needs the Python code shipped with "
                                        r"'jinaai/jina-embeddings-v3'"):
        MtebEncoder("jinaai/jina-embeddings-v3")


# ------------------------------------------------------------------------------------------- credentials
@pytest.mark.parametrize(("url", "public"), [
    ("http://user:pa55w0rd@127.0.0.1:8000/v1?token=tok123#frag", "http://127.0.0.1:8000/v1"),
    ("https://api.example.com/v1", "https://api.example.com/v1"),
    ("http://:secret@[::1]:9/x?a=b", "http://[::1]:9/x"),
    ("http://h:notaport/v1", "<unparsable URL>"),
])
def test_redact_url_keeps_scheme_host_port_path(url, public):
    assert redact_url(url) == public


def test_openai_config_records_no_credentials(monkeypatch, tmp_path):
    np = pytest.importorskip("numpy")
    pytest.importorskip("openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("LMEB_CACHE", str(tmp_path))
    encoder = load_model("openai:m", api_base="http://user:pa55w0rd@127.0.0.1:9/v1?token=tok123")
    # config() asks the server for its probe vector (lmeb.models.api_probe): answered here without a server
    monkeypatch.setattr(encoder, "_request", lambda texts: np.ones((len(texts), 4), dtype=np.float32))
    text = json.dumps(encoder.config())
    assert "pa55w0rd" not in text and "tok123" not in text and "user" not in text
    recorded = "".join(p.read_text() for p in tmp_path.rglob("*.json"))  # the probe's record beside the cache
    assert recorded and "pa55w0rd" not in recorded and "tok123" not in recorded
    assert encoder.config()["api_base"] == "http://127.0.0.1:9/v1"
    assert encoder.api_base.endswith("?token=tok123")  # the client still gets the whole address


# --------------------------------------------------------------------------------------------------- CSV
@pytest.mark.parametrize(("cell", "safe"), [
    ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'), ("+cmd", "'+cmd"), ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("-1.50", "-1.50"), ("+3", "+3"), ("bm25", "bm25"),
    (12.5, 12.5),
])
def test_csv_cell(cell, safe):
    assert csv_cell(cell) == safe


def test_table_and_compare_csv_neutralise_formulas(write_results, tmp_path, capsys):
    evil = '=HYPERLINK("http:evil","x")'
    per_query = {"q1": 0.5, "q2": 0.25}
    for model in (evil, "@other"):
        write_results(tmp_path / "res", model, datasets=["Gorilla"], per_query=lambda task, sub: per_query,
                      scores=lambda task, i, sub: {"ndcg_at_10": 0.375})
    assert run_cli("table", tmp_path / "res", "--format", "csv") == 0
    out = capsys.readouterr().out
    cells = [c for row in csv.reader(io.StringIO(out)) for c in row]
    assert "'" + evil in cells and "'@other" in cells and evil not in cells
    assert not any(c.startswith(("=", "@", "+")) for c in cells)


# ------------------------------------------------------------------------------------------------- paths
@pytest.mark.parametrize("name", ["..", ".", "/", "a\\..\\b", " .. "])
def test_model_name_cannot_leave_the_output(name, sample_data, tmp_path, capsys):
    out = tmp_path / "trav" / "out"
    code = run_cli("run", "--model", "bm25", "--name", name, "--tasks", "Gorilla", "--data", sample_data,
                   "--output", out, "--no-cache", "--no-progress")
    line = one_error_line(capsys)
    assert code == 2 and "model name" in line
    assert not list((tmp_path / "trav").rglob("*.json"))


def test_safe_name_refuses_escapes():
    for bad in ("..", ".", "../x", "/etc/passwd", "a/../../b", "a\\..\\b", "", " ", "a\0b"):
        with pytest.raises(LmebError, match="model name"):
            safe_name(bad, "model name")
    assert safe_name("org__model", "model name") == "org__model"


@pytest.mark.parametrize("revision", ["/tmp/lmeb-absolute-victim", "..", "../../escape"])
def test_export_revision_stays_under_out(revision, write_results, tmp_path, capsys):
    paths = write_results(tmp_path / "res", "m", datasets=["Gorilla"],
                          scores=lambda task, i, sub: {"ndcg_at_10": 0.5})
    obj = json.loads(paths[0].read_text())
    obj["lmeb"]["model_config"] = {"revision": revision}
    paths[0].write_text(json.dumps(obj))
    shutil.rmtree("/tmp/lmeb-absolute-victim", ignore_errors=True)
    code = run_cli("export-mteb", tmp_path / "res", tmp_path / "exp", "--allow-incomplete")
    line = one_error_line(capsys)
    assert code == 2 and "model revision" in line and str(paths[0]) in line
    assert not Path("/tmp/lmeb-absolute-victim").exists()
    assert not [p for p in tmp_path.rglob("*.json") if tmp_path / "exp" not in p.parents and tmp_path / "res"
                not in p.parents]
    code = run_cli("export-mteb", tmp_path / "res", tmp_path / "exp", "--allow-incomplete", "--revision", revision)
    assert code == 2 and "model revision" in one_error_line(capsys)


@pytest.mark.parametrize("name", ["../../../../victim", "/ABS/victim", "..", "a/b", "victim\n"])
def test_cache_index_names_never_touch_files_outside(name, tmp_path):
    enc = HashEncoder()
    texts = [f"doc {i}" for i in range(5)]
    EmbeddingStore(enc, cache_dir=tmp_path / "cache").embed(texts, "document")
    folder = tmp_path / "cache" / "embeddings" / namespace_key(enc.config(), "document", None)
    victim_dir = tmp_path / "victims"
    victim_dir.mkdir()
    victim = victim_dir / "victim"
    for suffix in (".npy", ".keys.npy"):
        np.save(str(victim) + suffix, np.zeros((1, 1), dtype=np.float32))
    entry = name.replace("/ABS", str(victim_dir)) if name.startswith("/ABS") else name
    index = json.loads((folder / "index.json").read_text())
    index["shards"][entry] = {"rows": 1, "dim": 1, "vectors": "x", "keys": "y"}
    (folder / "index.json").write_text(json.dumps(index))
    # the relative names point at tmp_path/victims/victim from a folder 4 levels deep only if they resolve there;
    # whatever they point at, nothing outside the namespace folder is read, written or deleted
    with pytest.warns(Warning):
        vectors = EmbeddingStore(enc, cache_dir=tmp_path / "cache").embed(texts, "document")
    assert vectors.shape == (5, 8)
    assert (victim_dir / "victim.npy").is_file() and (victim_dir / "victim.keys.npy").is_file()
    assert run_cli("cache", "prune", "--cache-dir", tmp_path / "cache") == 0
    assert entry not in json.loads((folder / "index.json").read_text())["shards"]
    assert run_cli("cache", "verify", "--cache-dir", tmp_path / "cache") == 0
