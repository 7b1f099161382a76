"""Adapters and API misuse (issue 19): an OpenAI-compatible server answering 200 with something that is
not an embeddings answer, a vector size that changes between calls, credentials in --api-base, a Ray
address nothing listens on, and user objects returning the wrong things (strings, ragged lists, NaN,
overflowing dot products, sets, int ids...). Each is retried where that can help, then one LmebError;
nothing of a failed call reaches the disk cache."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest

import lmeb
from lmeb.cli import main as cli_main
from lmeb.embeddings.store import EmbeddingStore
from lmeb.errors import LmebError
from lmeb.models import openai_api
from lmeb.models.registry import load_model

DIM = 4


def fake_vector(text: str, dim: int = DIM) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [b / 255 + 0.01 for b in digest[:dim]]


class FakeServer:
    """A stdlib HTTP server answering ``/embeddings`` POSTs; ``faults`` (one per request, in order) break it."""

    def __init__(self) -> None:
        self.faults: list[str] = []
        self.requests = 0
        self.waits: list[float] = []  # the adapter's backoffs between retries of a bad answer (see ``api``)
        state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                state.requests += 1
                fault = state.faults.pop(0) if state.faults else ""
                texts = body["input"]
                rows = [{"object": "embedding", "index": i,
                         "embedding": fake_vector(t, 3 if fault == "dim3" else DIM)} for i, t in enumerate(texts)]
                answer: object = {"object": "list", "data": rows, "model": body["model"], "usage": {"total_tokens": 1}}
                kind = "application/json"
                if fault == "no_data":
                    answer = {"object": "list"}
                elif fault == "null_data":
                    answer = {"object": "list", "data": None}
                elif fault == "list":
                    answer = rows
                elif fault == "dup_index":
                    answer = {"object": "list", "data": [dict(r, index=0) for r in rows]}
                data = json.dumps(answer).encode()
                if fault == "truncated":
                    data = data[: len(data) // 2]
                elif fault == "html":
                    data, kind = b"<html><body>502 Bad Gateway</body></html>", "text/html"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        # polled every 0.05 s: shutdown() waits for the next poll (0.5 s by default)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeServer]:
    pytest.importorskip("openai")
    server = FakeServer()
    yield server
    server.httpd.shutdown()


@pytest.fixture
def api(fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    """The server, and the adapter's backoff recorded in ``waits`` instead of slept (0.75 s a test otherwise)."""
    fake_server.faults.clear()
    fake_server.waits = []
    monkeypatch.setattr(openai_api, "time", SimpleNamespace(sleep=fake_server.waits.append))
    return fake_server


def _encoder(api: FakeServer, **options: object):
    return load_model("openai:fake", api_base=api.url, **{"timeout": 10.0, "max_retries": 2, **options})


BAD_ANSWERS = ["truncated", "html", "no_data", "null_data", "list"]


@pytest.mark.parametrize("fault", BAD_ANSWERS)
def test_bad_200_answer_is_retried(api, fault):
    encoder = _encoder(api)
    api.faults.append(fault)
    vectors = encoder.encode(["a", "b"], "document")
    assert vectors.shape == (2, DIM) and encoder.stats["retries"] == 1
    assert api.waits == [0.25]  # one backoff before the retry


@pytest.mark.parametrize("fault", BAD_ANSWERS)
def test_bad_200_answer_every_time_is_one_line_and_caches_nothing(api, fault, tmp_path):
    encoder = _encoder(api, batch_size=2, concurrency=1)
    store = EmbeddingStore(encoder, tmp_path)
    api.faults.extend(["", fault, fault, fault])  # first round fine, the second fails three times
    with pytest.raises(LmebError, match=r"openai:fake at http://127.0.0.1:\d+/v1: an answer .* \(after 3 tries\)") \
            as err:
        store.embed(["t0", "t1", "t2", "t3"], "document")
    assert "\n" not in str(err.value)
    assert api.waits == [0.25, 0.5]  # exponential backoff between the three tries
    again = EmbeddingStore(_encoder(api, batch_size=2, concurrency=1), tmp_path)
    again.embed(["t0", "t1", "t2", "t3"], "document")
    assert (again.stats.disk, again.stats.encoded) == (2, 2)  # only the good round was cached


def test_duplicate_indices_say_so(api):
    api.faults.append("dup_index")
    with pytest.raises(LmebError, match=r"returned 3 vectors for 3 texts, but with indices repeated: \[0\]"):
        _encoder(api).encode(["a", "b", "c"], "document")


def test_vector_size_changing_between_calls(api, tmp_path):
    store = EmbeddingStore(_encoder(api, batch_size=2, concurrency=1), tmp_path)
    store.embed(["a", "b"], "document")
    api.faults.append("dim3")
    with pytest.raises(LmebError, match=r"vectors of size 3 after earlier answers of size 4; nothing of this call "
                                        r"is cached"):
        store.embed(["c", "d"], "document")
    again = EmbeddingStore(_encoder(api, batch_size=2, concurrency=1), tmp_path)
    assert again.embed(["a", "b", "c", "d"], "document").shape == (4, DIM)
    assert (again.stats.disk, again.stats.encoded) == (2, 2)


def test_credentials_are_recorded_nowhere(api, sample_data, tmp_path, monkeypatch):
    """--api-base with user, password and a token: results JSON, cache index and leaderboard hold none."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    data = tmp_path / "data"
    shutil.copytree(sample_data / "Procedural" / "Gorilla", data / "Procedural" / "Gorilla")
    secret_base = f"http://user:pa55w0rd@127.0.0.1:{api.port}/v1?token=tok123"
    assert cli_main(["run", "--model", "openai:fake", "--api-base", secret_base, "--tasks", "Gorilla", "--data",
                     str(data), "--output", str(tmp_path / "res"), "--cache-dir", str(tmp_path / "cache"),
                     "--no-progress"]) == 0
    assert cli_main(["leaderboard", str(tmp_path / "res"), "--out", str(tmp_path / "site"), "--no-figures"]) == 0
    files = [p for p in tmp_path.rglob("*") if p.is_file() and data not in p.parents and p.suffix != ".npy"]
    assert any(p.name == "index.json" for p in files) and any(p.name == "Gorilla.json" for p in files)
    for path in files:
        text = path.read_bytes()
        assert b"pa55w0rd" not in text and b"tok123" not in text, path
    recorded = json.loads((tmp_path / "res" / "fake" / "wo_inst" / "Gorilla.json").read_text())
    assert recorded["lmeb"]["model_config"]["api_base"] == f"http://127.0.0.1:{api.port}/v1"


def test_ray_address_nothing_listens_on_fails_fast(monkeypatch):
    pytest.importorskip("ray")
    from lmeb.scale.cluster import connect

    monkeypatch.setenv("LMEB_RAY_TIMEOUT", "3")
    started = time.monotonic()
    with pytest.raises(LmebError, match=r"could not reach the Ray cluster at 127.0.0.1:1 within 3s"):
        connect("127.0.0.1:1")
    assert time.monotonic() - started < 10


def test_an_address_nobody_answers_fails_before_ray_is_imported(monkeypatch):
    """The address is probed first: a cluster that is down costs no import of Ray (0.4 s and more)."""
    import importlib.abc

    from lmeb.scale.cluster import connect

    class NoRay(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "ray":
                raise ImportError("ray was imported")
            return None

    monkeypatch.delitem(sys.modules, "ray", raising=False)
    monkeypatch.setattr(sys, "meta_path", [NoRay(), *sys.meta_path])
    monkeypatch.setenv("LMEB_RAY_TIMEOUT", "3")
    with pytest.raises(LmebError, match=r"could not reach the Ray cluster at 127.0.0.1:1 within 3s"):
        connect("127.0.0.1:1")


def test_ray_timeout_option(sample_data, tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("LMEB_RAY_TIMEOUT", "999")  # the option overrides it, for this run only
    code = cli_main(["run", "--model", "sentence-transformers/all-MiniLM-L6-v2", "--tasks", "Gorilla", "--data",
                     str(sample_data), "--output", str(tmp_path / "o"), "--ray", "127.0.0.1:1", "--ray-timeout", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "could not reach the Ray cluster at 127.0.0.1:1 within 2s" in err
    assert len(err.splitlines()) == 1
    assert os.environ["LMEB_RAY_TIMEOUT"] == "999"  # passed down, not left in the process environment


# -------------------------------------------------------------------------------------- user objects
class Returns:
    """An encoder returning ``value`` (a function of the texts) from encode."""

    similarity = "dot"

    def __init__(self, make, name: str = "bad-encoder") -> None:
        self.make, self.name = make, name

    def encode(self, texts, kind="query", instruction=None):
        return self.make(texts)


def _torch():
    return pytest.importorskip("torch")


BAD_OUTPUTS = {
    "string": (lambda t: "vectors", r"encode returned a str \('vectors'\)"),
    "strings": (lambda t: [["a", "b"] for _ in t], r"not numbers of one length"),
    "ragged": (lambda t: [[1.0] * (1 + i % 2) for i in range(len(t))], r"not numbers of one length"),
    "n_by_0": (lambda t: np.zeros((len(t), 0)), r"vectors of shape \(\d+, 0\)"),
    "none": (lambda t: None, r"encode returned None"),
    "set": (lambda t: {1, 2}, r"encode returned a set"),
    "nan": (lambda t: np.full((len(t), 3), np.nan), r"non-finite"),
}


@pytest.mark.parametrize("case", list(BAD_OUTPUTS))
def test_bad_encoder_outputs_are_one_line(case, sample_data, tmp_path):
    make, message = BAD_OUTPUTS[case]
    with pytest.raises(LmebError, match=message) as err:
        lmeb.evaluate(Returns(make), tasks="Gorilla/gorilla_tensor", data=sample_data, name="bad-encoder",
                      cache_dir=tmp_path / "cache")
    assert "bad-encoder" in str(err.value) and "\n" not in str(err.value)
    assert not list((tmp_path / "cache").rglob("*.npy"))  # nothing reached the disk cache


def test_bf16_and_grad_tensors_are_converted(sample_data):
    torch = _torch()

    def tensor(texts):
        vectors = torch.tensor([fake_vector(t) for t in texts], requires_grad=True)
        return (vectors * 1).to(torch.bfloat16) if len(texts) % 2 else vectors * 1

    res = lmeb.evaluate(Returns(tensor), tasks="Gorilla/gorilla_tensor", data=sample_data, name="t", cache_dir=None)
    scores = res.scores
    assert 0 <= float(scores[scores.metric == "ndcg_at_10"].value.iloc[0]) <= 1


def test_dot_products_overflowing_to_inf_name_the_model(sample_data):
    huge = Returns(lambda t: np.asarray([fake_vector(x) for x in t], dtype=np.float32) * 1e30, name="huge")
    with pytest.raises(LmebError, match=r"model 'huge': non-finite similarity scores"):
        lmeb.evaluate(huge, tasks="Gorilla/gorilla_tensor", data=sample_data, name="huge", cache_dir=None)


class Configured(Returns):
    def __init__(self, config: object) -> None:
        super().__init__(lambda t: np.ones((len(t), 2)))
        self._config = config

    def config(self):
        return self._config


@pytest.mark.parametrize("config", [{"a", "b"}, [("a", 1)], None, "cfg"])
def test_config_must_be_a_dict(config, sample_data):
    with pytest.raises(LmebError, match=r"Configured.config\(\) returned .*; it must return a dict"):
        lmeb.evaluate(Configured(config), tasks="Gorilla/gorilla_tensor", data=sample_data, cache_dir=None)


class Searcher:
    name = "bad-searcher"

    def __init__(self, make) -> None:
        self.make = make

    def search(self, doc_ids, doc_texts, queries, k=1000, instruction=None, candidates=None):
        return self.make(doc_ids, queries)


BAD_RANKINGS = {
    "lists": (lambda d, q: [[d[0]] for _ in q], r"search returned a list of 1 items for query 0"),
    "none": (lambda d, q: None, r"search returned None"),
    "int_ids": (lambda d, q: [{i: 1.0 for i in range(3)} for _ in q], r"document id of type int"),
    "string_scores": (lambda d, q: [{d[0]: "0.9"} for _ in q], r"a score of type str"),
    "nan_scores": (lambda d, q: [{d[0]: float("nan")} for _ in q], r"non-finite score \(nan\)"),
    "inf_scores": (lambda d, q: [{d[0]: np.float32("inf")} for _ in q], r"non-finite score \(inf\)"),
}


@pytest.mark.parametrize("case", list(BAD_RANKINGS))
def test_bad_searcher_outputs_are_one_line(case, sample_data):
    make, message = BAD_RANKINGS[case]
    with pytest.raises(LmebError, match=r"searcher 'bad-searcher': .*" + message):
        lmeb.evaluate(Searcher(make), tasks="Gorilla/gorilla_tensor", data=sample_data, name="bad-searcher",
                      cache_dir=None)


def test_stale_cache_vectors_of_another_size_name_the_cache_folder(tmp_path):
    """A cache namespace holding vectors of another size (a model whose output changed under one config)
    is named, with the folder, instead of a numpy broadcast error; nothing of the new size is cached."""
    from lmeb.models.objects import wrap_model

    def sized(dim):
        return wrap_model(Returns(lambda t: np.asarray([fake_vector(x, dim) for x in t], np.float32)), "sized").model

    EmbeddingStore(sized(4), tmp_path).embed(["a", "b"], "document")
    shards = sorted(tmp_path.rglob("*.npy"))
    with pytest.raises(LmebError, match=r"returned vectors of size 3, but the embedding cache .*embeddings/[0-9a-f]+ "
                                        r"holds vectors of size 4") as err:
        EmbeddingStore(sized(3), tmp_path).embed(["a", "b", "c"], "document")
    assert str(tmp_path) in str(err.value) and sorted(tmp_path.rglob("*.npy")) == shards
    with pytest.raises(LmebError, match=r"holds vectors of size 4"):  # also when no text of this call is cached
        EmbeddingStore(sized(3), tmp_path).embed(["c", "d"], "document")
    assert sorted(tmp_path.rglob("*.npy")) == shards
