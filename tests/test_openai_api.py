"""openai:<model> against a real OpenAI-compatible server on 127.0.0.1 (FastAPI + uvicorn embedding with
sentence-transformers all-MiniLM-L6-v2), with injected faults: 429 + Retry-After, 500, a hang, a wrong
count of vectors, NaN. Each gives the documented behaviour and nothing wrong reaches the cache."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from lmeb.cli import main as cli
from lmeb.embeddings.store import EmbeddingStore
from lmeb.errors import LmebError
from lmeb.models.api_probe import PROBE_TEXT
from lmeb.models.openai_api import OpenAIEncoder, batches, estimate_tokens
from lmeb.models.registry import load_model
from tests.conftest import assert_same_scores

# skipped without the openai extra or the test server's packages, which the fixtures import when they run: at
# module level the three cost every xdist worker 0.6 s of collection (tests/test_identity_api.py imports this)
for _package in ("openai", "fastapi", "uvicorn"):
    if importlib.util.find_spec(_package) is None:
        pytest.skip(f"{_package} is not installed", allow_module_level=True)

MAX_REQUESTS = 400  # the server's bound: beyond it every request gets a 503
# the hang case's client timeout: each of its 2 tries waits this long, so it sets the test's time; still far
# above a good answer's time on a loaded machine (with 1 s one sometimes timed out). A hung request sleeps longer.
HANG_TIMEOUT = 2.0
TEXTS = [f"text number {i} about memory and retrieval" + " word" * (i % 7) for i in range(23)]


@dataclass
class Server:
    """The test server's state: faults to inject (one per request, in order) and what it saw."""

    url: str
    faults: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # texts per answered request
    tokens: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    delay: float = 0.0
    generation: int = 0  # bumped by reset: a request still sleeping from an earlier test is not counted
    variant: bool = False  # serve another model under the same name (MiniLM reading each text backwards)

    def reset(self) -> None:
        self.generation += 1
        self.faults.clear()
        self.sizes.clear()
        self.tokens = self.in_flight = self.max_in_flight = 0
        self.delay = 0.0
        self.variant = False


@pytest.fixture(scope="module")
def server(minilm_path: Path) -> Iterator[Server]:
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_path), device="cpu")
    app = FastAPI()
    state = Server(url="")
    lock = threading.Lock()
    count = {"requests": 0}

    def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": "test"}}, status_code=status, headers=headers)

    async def embeddings(request: Request) -> Response:
        count["requests"] += 1
        if count["requests"] > MAX_REQUESTS:
            return error(503, "test server request budget spent")
        generation = state.generation
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        probe = texts == [PROBE_TEXT]  # the encoder's identity probe (lmeb.models.api_probe): not counted
        fault = state.faults.pop(0) if state.faults and not probe else None
        if fault == "429":
            return error(429, "slow down", {"Retry-After": "0.3"})
        if fault == "500":
            return error(500, "the GPU caught fire")
        if fault == "hang":
            await asyncio.sleep(HANG_TIMEOUT + 1)
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        await asyncio.sleep(state.delay)
        with lock:
            read = [t[::-1] for t in texts] if state.variant else texts
            vectors = model.encode(read, convert_to_numpy=True).astype(float).tolist()
        state.in_flight -= 1
        if fault == "count":
            vectors = vectors[:-1]
        if fault == "nan":
            vectors[0][0] = math.nan
        used = sum(len(model.tokenizer(t)["input_ids"]) for t in texts)
        # a hung request of the hang test can finish during a later test; the identity probe is not counted
        if generation == state.generation and not probe:
            state.sizes.append(len(texts))
            state.tokens += used
        payload = {"object": "list", "model": body["model"],
                   "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
                   "usage": {"prompt_tokens": used, "total_tokens": used}}
        return Response(json.dumps(payload), media_type="application/json")  # NaN stays NaN

    # FastAPI reads the endpoint's annotations from the module's globals, where (postponed, as strings) they
    # name nothing: give it the classes themselves
    embeddings.__annotations__.update({"request": Request, "return": Response})
    app.post("/v1/embeddings")(embeddings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=1)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "test server did not start"
        time.sleep(0.05)
    port = uv.servers[0].sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield state
    finally:
        uv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def api(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Server:
    server.reset()
    monkeypatch.setenv("LMEB_CACHE", str(tmp_path / "default-cache"))  # probe vectors of encoders without a cache
    # the openai client's own backoff between tries (0.5 s, doubling): these tests count tries, not wait them out
    monkeypatch.setattr("openai._base_client.INITIAL_RETRY_DELAY", 0.02, raising=False)
    return server


def _encoder(server: Server, **options: object) -> OpenAIEncoder:
    return load_model("openai:all-MiniLM-L6-v2", api_base=server.url, **{"timeout": 60.0, **options})


def test_batches_by_item_count_and_token_budget() -> None:
    texts = ["a" * 40, "b" * 40, "c" * 400, "d" * 4, "e" * 4]  # 10, 10, 100, 1, 1 estimated tokens
    assert [estimate_tokens(t) for t in texts] == [10, 10, 100, 1, 1]
    assert batches(texts, 2, None) == [(0, 2), (2, 4), (4, 5)]
    assert batches(texts, 10, 25) == [(0, 2), (2, 3), (3, 5)]  # the long text goes alone
    assert batches([], 4, 10) == []


def test_vectors_equal_local_model_and_stats_count(api: Server, minilm_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    encoder = _encoder(api, batch_size=5, concurrency=3)
    api.delay = 0.05
    vectors = encoder.encode(TEXTS, "document")
    local = SentenceTransformer(str(minilm_path), device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(vectors, local, atol=1e-5)
    assert api.sizes and max(api.sizes) == 5 and sum(api.sizes) == len(TEXTS)
    assert api.max_in_flight > 1  # requests overlap
    assert encoder.stats == {"requests": len(api.sizes), "tokens": api.tokens, "retries": 0}
    assert encoder.encode_chunk == 15


def test_429_with_retry_after_and_500_are_retried(api: Server) -> None:
    encoder = _encoder(api, batch_size=50, max_retries=3)
    api.faults.extend(["429", "500"])
    started = time.monotonic()
    vectors = encoder.encode(TEXTS[:4], "query")
    assert time.monotonic() - started >= 0.3  # waited the Retry-After at least
    assert vectors.shape == (4, 384)
    assert encoder.stats["retries"] == 2 and encoder.stats["requests"] == 1


@pytest.mark.slow
@pytest.mark.parametrize(("faults", "message"), [
    (["500", "500", "500"], r"HTTP 500 after 3 tries: the GPU caught fire"),
    (["429", "429", "429"], r"HTTP 429 after 3 tries: slow down"),
    (["hang", "hang"], rf"no answer within {HANG_TIMEOUT}s, 2 tries"),  # each try waits HANG_TIMEOUT: two, not three
    (["count"], r"returned 3 vectors for 4 texts"),
    (["nan"], r"non-finite"),
])
def test_faults_fail_in_one_line_and_cache_nothing(api: Server, tmp_path: Path, faults: list[str],
                                                   message: str) -> None:
    # only the hang case needs a short timeout, and even then one a loaded machine's good first answer meets
    # (with 1 s it sometimes timed out, the retry met the next fault, and nothing was cached: a flaky failure)
    encoder = _encoder(api, batch_size=4, concurrency=1, max_retries=1 if "hang" in faults else 2,
                       timeout=HANG_TIMEOUT if "hang" in faults else 60.0)
    store = EmbeddingStore(encoder, tmp_path)
    first, rest = TEXTS[:8], TEXTS[8:12]  # two rounds of one request: the first is fine, the second fails
    api.faults.extend(["", *faults])
    with pytest.raises(LmebError, match=message) as err:
        store.embed(first + rest, "document")
    assert "\n" not in str(err.value) and "all-MiniLM-L6-v2" in str(err.value)

    api.reset()
    again = EmbeddingStore(_encoder(api, batch_size=4, concurrency=1), tmp_path)
    vectors = again.embed(first + rest, "document")
    assert np.isfinite(vectors).all() and vectors.shape == (12, 384)
    assert again.stats.disk == 4  # the one good round was cached as it came back...
    assert again.stats.encoded == 8  # ... and nothing of the failed one


def test_nan_names_the_callers_text_not_the_requests_row(api: Server) -> None:
    encoder = _encoder(api, batch_size=4, concurrency=1)
    api.faults.extend(["", "nan"])  # the second request's first vector: text 4 of the call
    with pytest.raises(LmebError, match=r"non-finite .* for text 4 \(1 of 8 texts affected\)"):
        encoder.encode(TEXTS[:8], "document")


def test_bad_options_are_one_line_errors(api: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(LmebError, match=r"set \$OPENAI_API_KEY"):
        load_model("openai:text-embedding-3-small")
    with pytest.raises(LmebError, match="concurrency must be at least 1"):
        _encoder(api, concurrency=0)
    with pytest.raises(LmebError, match="does not apply to a sentence-transformers encoder"):
        load_model("sentence-transformers/all-MiniLM-L6-v2", dimensions=32)


@pytest.mark.slow
def test_cli_scores_equal_local_sentence_transformers(api: Server, sample_data: Path, minilm_path: Path,
                                                      tmp_path: Path) -> None:
    """`lmeb run --model openai:... --api-base URL` gives the local model's scores (to 1e-4)."""
    common = ["--tasks", "LoCoMo", "--data", str(sample_data), "--output", str(tmp_path / "res"), "--no-progress",
              "--cache-dir", str(tmp_path / "cache"), "--setting", "w_inst"]
    assert cli(["run", "--model", "openai:all-MiniLM-L6-v2", "--api-base", api.url, "--name", "api",
                "--concurrency", "2", "--batch-size", "16", "--request-timeout", "600", *common]) == 0
    assert cli(["run", "--model", str(minilm_path), "--name", "local", *common]) == 0
    api_res, _ = assert_same_scores(tmp_path / "res" / "api" / "w_inst" / "LoCoMo.json",
                                    tmp_path / "res" / "local" / "w_inst" / "LoCoMo.json", 1e-4)
    assert api.sizes and max(api.sizes) <= 16
    counts = [sub.provenance["model_counts"]["model"] for sub in api_res.subsets.values()]
    # a loaded machine must not turn a slow answer into a retry (the server would then see one request more)
    assert sum(c.get("retries", 0) for c in counts) == 0
    assert sum(c["requests"] for c in counts) == len(api.sizes)  # per-subset deltas of the encoder's stats
    assert sum(c["tokens"] for c in counts) == api.tokens


@pytest.mark.slow
def test_run_summary_and_results_show_what_the_api_cost(api: Server, sample_data: Path, tmp_path: Path) -> None:
    """The run summary ends with the API's requests, tokens and retries (an injected 429 is one retry);
    ``Results.model_counts()`` has them per subset; a rerun that keeps every subset costs nothing (no line)."""
    import io

    import lmeb
    from lmeb.cli.run import print_summary

    options = {"api_base": api.url, "batch_size": 16, "concurrency": 1, "max_retries": 2, "timeout": 60.0}
    common = {"tasks": "Gorilla/gorilla_tensor,Proced_mem_bench/easy", "data": sample_data,
              "output": tmp_path / "res", "cache_dir": tmp_path / "cache", "model_options": options}
    api.faults.append("429")
    res = lmeb.evaluate("openai:all-MiniLM-L6-v2", **common)
    expected = {"requests": len(api.sizes), "tokens": api.tokens, "retries": 1}
    assert len(api.sizes) > 1 and api.tokens > 0
    summed = [s.model_counts.get("model", {}) for s in res.summaries]
    assert {k: sum(c.get(k, 0) for c in summed) for k in expected} == expected  # per dataset, this run only
    out = io.StringIO()
    print_summary(res.summaries, str(res.name), "wo_inst", 1.0, file=out)
    assert [line for line in out.getvalue().splitlines() if "counts" in line] == [
        f"model counts: requests {expected['requests']:,}, tokens {expected['tokens']:,}, retries 1"]
    per_subset = res.model_counts()
    assert sorted(per_subset["subset"].unique()) == ["easy", "gorilla_tensor"]
    assert set(per_subset["role"]) == {"model"}
    assert per_subset.groupby("counter")["value"].sum().to_dict() == expected
    assert lmeb.load_results(tmp_path / "res").model_counts().equals(per_subset)  # read back from the files

    api.reset()
    again = lmeb.evaluate("openai:all-MiniLM-L6-v2", **common)  # every subset kept: nothing sent, no line
    assert api.sizes == [] and all(s.model_counts == {} for s in again.summaries)
    out = io.StringIO()
    print_summary(again.summaries, str(again.name), "wo_inst", 1.0, file=out)
    assert "counts:" not in out.getvalue()
