"""Any OpenAI-compatible ``/v1/embeddings`` server as an ``Encoder`` (``openai:<model>`` on the CLI).

Hosted APIs and self-run servers (vLLM, TEI, infinity, Ollama, LM Studio) alike, through the official
``openai`` client, whose own retry loop does the waiting: 408/409/429/5xx answers, timeouts and dropped
connections are retried ``max_retries`` times with exponential backoff and jitter (a ``Retry-After`` /
``retry-after-ms`` header of up to two minutes is honoured instead). After the last try the run stops with
one line naming the status and the server's message. An answer with the wrong number of vectors, unequal
dimensions or a NaN is an error too, and nothing of that round reaches the cache.

Texts are cut into requests of at most ``batch_size`` texts and ``max_batch_tokens`` estimated tokens
(``len(text) / 4`` rounded up: no tokenizer is needed for an unknown model; a single longer text goes
alone, the server truncates or refuses it). ``concurrency`` requests are in flight at once. The embedding
store asks for ``encode_chunk = batch_size * concurrency`` texts per call and writes every call's vectors
to the disk cache at once, so an interrupted run never pays twice for more than one round of requests.
``stats`` counts requests, tokens (from the answers' ``usage``) and retries for the run's provenance.
``config()`` first asks for the vector of a probe text, so a different model served under the same name
gets its own identity (``lmeb.models.api_probe``).
"""

from __future__ import annotations

import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

from lmeb.cache import Cache
from lmeb.errors import LmebError
from lmeb.models.base import DEFAULT_INSTRUCTION_TEMPLATE, Kind, check_finite, with_instruction
from lmeb.safety import redact_url

ADAPTER_VERSION = 1  # bump when this adapter changes the vectors it returns (it keys the embedding cache)
CHARS_PER_TOKEN = 4  # the token estimate for the batch budget


def estimate_tokens(text: str) -> int:
    """A tokenizer-free token estimate (about four characters per token for English text)."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def batches(texts: list[str], batch_size: int, max_batch_tokens: int | None) -> list[tuple[int, int]]:
    """``(start, end)`` ranges of consecutive texts: at most ``batch_size`` texts and ``max_batch_tokens``
    estimated tokens each (a text over the budget goes alone)."""
    out: list[tuple[int, int]] = []
    start, tokens = 0, 0
    for i, text in enumerate(texts):
        cost = estimate_tokens(text)
        full = i - start >= batch_size or (max_batch_tokens is not None and tokens + cost > max_batch_tokens)
        if i > start and full:
            out.append((start, i))
            start, tokens = i, 0
        tokens += cost
    if start < len(texts):
        out.append((start, len(texts)))
    return out


class OpenAIEncoder:
    """Embeds texts with an OpenAI-compatible embeddings endpoint (see the module docstring)."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        dimensions: int | None = None,
        batch_size: int = 64,
        max_batch_tokens: int | None = 8000,
        concurrency: int = 4,
        max_retries: int = 6,
        timeout: float = 60.0,
        instruction_template: str = DEFAULT_INSTRUCTION_TEMPLATE,
        similarity: Literal["cosine", "dot"] = "cosine",
        name: str | None = None,
        cache: Cache | None = None,
    ) -> None:
        try:
            import openai
        except ImportError:
            raise LmebError("openai: models need the openai package: pip install 'lmeb[openai]'") from None
        if not model:
            raise LmebError("openai: give a model name, e.g. openai:text-embedding-3-small")
        for option, value in (("batch_size", batch_size), ("concurrency", concurrency),
                              ("max_batch_tokens", max_batch_tokens or 1), ("dimensions", dimensions or 1)):
            if value < 1:
                raise LmebError(f"openai: {option} must be at least 1 (got {value})")
        if max_retries < 0 or timeout <= 0:
            raise LmebError("openai: max_retries must be >= 0 and timeout > 0")
        key = os.environ.get(api_key_env)
        if not key and api_base is None:
            raise LmebError(f"openai: set ${api_key_env} to your API key (or pass --api-base for a local server)")
        self.model = model
        self.api_base = api_base or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self.public_base = redact_url(self.api_base)  # what is recorded or printed: no credentials, no query
        self.where = f"openai:{self.model} at {self.public_base}"  # how every message names this model
        self.dimensions = dimensions
        self.batch_size = int(batch_size)
        self.max_batch_tokens = max_batch_tokens
        self.concurrency = int(concurrency)
        self.encode_chunk = self.batch_size * self.concurrency  # the store flushes to disk after each call
        self.instruction_template = instruction_template
        self.similarity: Literal["cosine", "dot"] = similarity
        self.name = name or model
        self.stats = {"requests": 0, "tokens": 0, "retries": 0}
        self._lock = threading.Lock()
        self._dim: int | None = dimensions
        self._openai = openai
        self.cache = cache  # where the probe vectors are remembered (lmeb.models.api_probe)
        self._served: list[str | None] = []  # the probe's verdict, once asked
        # a local server needs no key, but the client insists on one
        self.client = openai.OpenAI(base_url=self.api_base, api_key=key or "unused", max_retries=int(max_retries),
                                    timeout=float(timeout))

    def encode(self, texts: list[str], kind: Kind = "query", instruction: str | None = None) -> np.ndarray:
        """float32 vectors of ``texts``, requested ``concurrency`` batches at a time."""
        inputs = with_instruction(texts, kind, instruction, self.instruction_template)
        if not inputs:
            return np.zeros((0, self.dimensions or 0), dtype=np.float32)
        ranges = batches(inputs, self.batch_size, self.max_batch_tokens)
        if len(ranges) == 1 or self.concurrency == 1:
            parts = [self._request(inputs[a:b]) for a, b in ranges]
        else:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(ranges))) as pool:
                parts = list(pool.map(lambda r: self._request(inputs[r[0]:r[1]]), ranges))
        dims = {p.shape[1] for p in parts}
        if len(dims) != 1:
            raise LmebError(f"{self.where} returned vectors of sizes {sorted(dims)}")
        return check_finite(np.concatenate(parts) if len(parts) > 1 else parts[0], self.name)

    def _request(self, texts: list[str]) -> np.ndarray:
        """One embeddings request (the client retries HTTP failures; a 200 answer that is not an embeddings
        answer — truncated JSON, an HTML page, no ``data`` list — is retried here); its vectors in input
        order, shape-checked."""
        tries = self.client.max_retries + 1
        for attempt in range(tries):
            try:
                return self._answer(texts)
            except BadAnswer as exc:
                if attempt + 1 == tries:
                    raise LmebError(f"{self.where}: {exc} (after {tries} tr{'ies' if tries > 1 else 'y'})") from None
                with self._lock:
                    self.stats["retries"] += 1
                time.sleep(min(0.25 * 2**attempt, 8.0))
        raise AssertionError("unreachable")

    def _answer(self, texts: list[str]) -> np.ndarray:
        extra: dict[str, Any] = {} if self.dimensions is None else {"dimensions": self.dimensions}
        try:
            raw = self.client.embeddings.with_raw_response.create(
                model=self.model, input=texts, encoding_format="float", **extra)
            response = raw.parse()
        except (ValueError, RecursionError) as exc:  # a 200 whose body is not JSON (truncated, HTML)
            raise BadAnswer(f"an answer that is not JSON ({type(exc).__name__})") from None
        except self._openai.APIStatusError as exc:
            retried = exc.status_code in (408, 409, 429) or exc.status_code >= 500
            tries = self.client.max_retries + 1 if retried else 1
            raise LmebError(f"{self.where}: HTTP {exc.status_code} after {tries} tr{'ies' if tries > 1 else 'y'}: "
                            f"{_server_message(exc)}") from None
        except self._openai.APITimeoutError:
            raise LmebError(f"{self.where}: no answer within {self.client.timeout}s, "
                            f"{self.client.max_retries + 1} tries") from None
        except self._openai.APIConnectionError as exc:
            raise LmebError(f"{self.where}: cannot connect after {self.client.max_retries + 1} tries "
                            f"({exc.__cause__ or exc})") from None
        except self._openai.OpenAIError as exc:
            raise LmebError(f"{self.where}: {type(exc).__name__}: {exc}") from None
        data = answer_rows(response)
        if len(data) != len(texts):
            raise LmebError(f"{self.where} returned {len(data)} vectors for {len(texts)} texts")
        if [d.index for d in data] != list(range(len(texts))):
            repeated = sorted({d.index for d in data if [e.index for e in data].count(d.index) > 1})
            raise LmebError(f"{self.where} returned {len(data)} vectors for {len(texts)} texts, but with indices "
                            f"{'repeated: ' + str(repeated[:5]) if repeated else 'outside 0..' + str(len(texts) - 1)}")
        try:
            vectors = np.asarray([d.embedding for d in data], dtype=np.float32)
        except (TypeError, ValueError):
            raise LmebError(f"{self.where} returned embeddings that are not lists of numbers of one length") from None
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise LmebError(f"{self.where} returned vectors of shape {vectors.shape} for {len(texts)} texts")
        with self._lock:  # the size of the first answer holds for the whole run (cached rows have it too)
            self._dim = self._dim or vectors.shape[1]
        if vectors.shape[1] != self._dim:
            raise LmebError(f"{self.where} returned vectors of size {vectors.shape[1]} after earlier answers of size "
                            f"{self._dim}; nothing of this call is cached")
        usage = getattr(response, "usage", None)
        with self._lock:
            self.stats["requests"] += 1
            self.stats["retries"] += int(getattr(raw, "retries_taken", 0) or 0)
            self.stats["tokens"] += int(getattr(usage, "total_tokens", 0) or getattr(usage, "prompt_tokens", 0) or 0)
        return vectors  # checked for NaN once, by encode (its row numbers are the caller's)

    def config(self) -> dict[str, Any]:
        """Everything that changes the vectors; keys the embedding cache and goes into provenance. ``served``
        names the model behind the name when it is not the first one seen there (``lmeb.models.api_probe``)."""
        config = self._base_config()
        if not self._served:
            from lmeb.models.api_probe import PROBE_TEXT, served_identity

            cache = (self.cache or Cache.default()).root
            self._served.append(served_identity(config, self._request([PROBE_TEXT])[0], cache, self.where))
        return config if self._served[0] is None else {**config, "served": self._served[0]}

    def _base_config(self) -> dict[str, Any]:
        return {
            "class": "OpenAIEncoder",
            "adapter_version": ADAPTER_VERSION,
            "model": self.model,
            "api_base": self.public_base,
            "dimensions": self.dimensions,
            "similarity": self.similarity,
            "instruction_template": self.instruction_template,
        }


class BadAnswer(Exception):
    """A 200 answer that is not an embeddings answer (retried, then one ``LmebError``)."""


def answer_rows(response: Any) -> list[Any]:
    """The ``data`` rows of a parsed answer, each with an int ``index`` and a list ``embedding``, sorted by
    index; ``BadAnswer`` for an HTML page, a top-level list, a missing or null ``data``..."""
    data = None if isinstance(response, (str, bytes, list, dict)) else getattr(response, "data", None)
    if not isinstance(data, list):
        what = type(response).__name__ if isinstance(response, (str, bytes, list, dict)) else f"data={data!r:.20}"
        raise BadAnswer(f"an answer without a 'data' list of embeddings ({what})")
    for row in data:
        index = getattr(row, "index", None)
        if not isinstance(index, int) or isinstance(index, bool) or not isinstance(getattr(row, "embedding", None),
                                                                                   list):
            raise BadAnswer("an answer whose 'data' rows lack an integer 'index' and an 'embedding' list")
    return sorted(data, key=lambda d: d.index)


def _server_message(exc: Any) -> str:
    """The server's own error message (OpenAI's ``{"error": {"message": ...}}`` or any body), one line."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message is None and isinstance(inner, dict):
            message = inner.get("detail")
        body = message if message is not None else body
    text = str(body if body is not None else getattr(exc, "message", exc))
    return " ".join(text.split())[:300]
