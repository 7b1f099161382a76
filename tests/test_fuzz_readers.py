"""A seeded fuzz test of every reader of untrusted files (issue 19): corpus, queries, qrels and candidates
lines, results files and their per-query sidecars, embedding-cache indexes. Valid inputs are mutated
(bytes flipped, cut, spliced with hostile tokens; JSON subtrees replaced by values of other types) and
each reader must either accept the input or raise ``LmebError`` (one line): never another exception.
Bounded in time (``BUDGET_S`` per target, with a floor of cases that a stalled machine cannot starve), so it
runs in the fast loop; the seed makes a failure replayable."""

from __future__ import annotations

import json
import os
import random
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lmeb.data.lines import read_candidates, read_corpus, read_qrels, read_queries
from lmeb.embeddings.store import EmbeddingStore, namespace_key
from lmeb.errors import LmebError
from lmeb.results.consistency import result_problems
from lmeb.results.dataset_result import read_dataset_result
from tests.test_embeddings import HashEncoder

SEED = int(os.environ.get("LMEB_FUZZ_SEED", "19"))  # another seed / a longer budget: a deeper search
BUDGET_S = float(os.environ.get("LMEB_FUZZ_SECONDS", "0.8"))  # seconds per target
HOSTILE = [b"\\ud800", b"\\udfff", b"[" * 3000, b"{" * 3000, b"1" * 5000, b"1e999", b"-1e999", b"NaN", b"Infinity",
           b"\xff\xfe", b"\x00", b"\t", b"\r", b"\xd9\xa1", b"1_0", b"99999999999999999999", b"null", b"true", b"[]",
           b"{}", b'"', b"\\", b"\n", b"\xed\xa0\x80", b"\xef\xbb\xbf"]
JSON_VALUES: list[Any] = [None, True, 0, -1, 1e308, 2**70, "", "x", "\ud800", [], [1], {}, {"a": 1}, [[[]]],
                          "../../x", "/abs", float("nan")]


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """One to three random edits: flip, cut, splice a hostile token, duplicate a slice."""
    for _ in range(rng.randint(1, 3)):
        if not data:
            data = rng.choice(HOSTILE)
            continue
        at = rng.randrange(len(data))
        op = rng.randrange(4)
        if op == 0:
            data = data[:at] + bytes([rng.randrange(256)]) + data[at + 1:]
        elif op == 1:
            data = data[:at]
        elif op == 2:
            data = data[:at] + rng.choice(HOSTILE) + data[at:]
        else:
            end = min(len(data), at + rng.randint(1, 40))
            data = data[:end] + data[at:end] + data[end:]
    return data


def mutate_json(rng: random.Random, obj: Any) -> Any:
    """``obj`` with one random subtree (or key) replaced by a value of another type."""
    if isinstance(obj, dict) and obj and rng.random() < 0.8:
        key = rng.choice(list(obj))
        out = dict(obj)
        if rng.random() < 0.1:
            out[rng.choice(["", "..", "\ud800", "hf_subset"])] = out.pop(key)
        else:
            out[key] = mutate_json(rng, obj[key])
        return out
    if isinstance(obj, list) and obj and rng.random() < 0.8:
        out = list(obj)
        i = rng.randrange(len(out))
        out[i] = mutate_json(rng, out[i])
        return out
    return rng.choice(JSON_VALUES)


def fuzz(target: Callable[[random.Random, int], None], at_least: int) -> int:
    """Run ``target(rng, i)`` until the budget is spent and at least ``at_least`` cases ran (a stalled machine
    can spend a short budget on a handful of cases); every exception but LmebError fails the test."""
    rng = random.Random(SEED)
    deadline, i = time.monotonic() + BUDGET_S, 0
    while i < at_least or time.monotonic() < deadline:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                target(rng, i)
        except LmebError as exc:
            assert "\n" not in str(exc), str(exc)
        except Exception as exc:  # the finding: name the case so it can be replayed
            raise AssertionError(f"case {i} (seed {SEED}): {type(exc).__name__}: {exc}") from exc
        i += 1
    return i


DATA_LINES = {
    "corpus": (read_corpus, b'{"id": "d1", "title": "T", "text": "some text"}\n{"id": 2, "text": "more"}\n'),
    "queries": (lambda p: read_queries(p), b'{"id": "q1", "text": "a query"}\n{"id": "q2", "text": "another"}\n'),
    "qrels": (lambda p: read_qrels(p), b"q1\td1\t1\nq2\t2\t0\n"),
    "candidates": (lambda p: read_candidates(p), b'{"scene_id": "q1", "candidate_doc_ids": ["d1", 2]}\n'),
}


@pytest.mark.parametrize("kind", list(DATA_LINES))
def test_data_readers_raise_only_lmeb_errors(kind, tmp_path):
    reader, valid = DATA_LINES[kind]
    path = tmp_path / f"{kind}.data"

    def case(rng: random.Random, i: int) -> None:
        path.write_bytes(mutate_bytes(rng, valid))
        reader(path)

    fuzz(case, at_least=20)


@pytest.fixture
def results_pair(write_results, tmp_path: Path) -> tuple[Path, bytes, bytes]:
    per_query = {"q1": 0.5, "q2": 0.25}
    (path,) = write_results(tmp_path / "res", "m", datasets=["Gorilla"], per_query=lambda task, sub: per_query,
                            scores=lambda task, i, sub: {"ndcg_at_10": 0.375})
    side = path.with_suffix("").with_suffix(".per_query.json")
    return path, path.read_bytes(), side.read_bytes()


def _read_both_ways(path: Path) -> None:
    for strict in (True, False):
        result = read_dataset_result(path, per_query=True, strict=strict)
        result_problems(result)


def test_results_reader_raises_only_lmeb_errors(results_pair):
    path, main, side = results_pair
    side_path = path.with_suffix("").with_suffix(".per_query.json")
    main_obj, side_obj = json.loads(main), json.loads(side)

    def case(rng: random.Random, i: int) -> None:
        side_path.write_bytes(side)
        if i % 3 == 0:
            path.write_bytes(mutate_bytes(rng, main))
        elif i % 3 == 1:
            path.write_text(json.dumps(mutate_json(rng, main_obj), ensure_ascii=False), encoding="utf-8",
                            errors="surrogatepass")
        else:  # the sidecar, its recorded sha left as it is (a mismatch) or recomputed (the shape is read)
            path.write_bytes(main)
            side_path.write_text(json.dumps(mutate_json(rng, side_obj)), encoding="utf-8")
        _read_both_ways(path)

    fuzz(case, at_least=20)


def test_cache_index_reader_never_raises(tmp_path):
    enc = HashEncoder()
    EmbeddingStore(enc, cache_dir=tmp_path).embed([f"t{i}" for i in range(4)], "document")
    folder = tmp_path / "embeddings" / namespace_key(enc.config(), "document", None)
    valid = (folder / "index.json").read_bytes()
    index_obj = json.loads(valid)
    outside = tmp_path / "outside.npy"
    np.save(outside, np.zeros((1, 1), np.float32))

    def case(rng: random.Random, i: int) -> None:
        from lmeb.embeddings.disk_cache import DiskCache

        if i % 2:
            (folder / "index.json").write_bytes(mutate_bytes(rng, valid))
        else:
            (folder / "index.json").write_text(json.dumps(mutate_json(rng, index_obj)), encoding="utf-8")
        DiskCache(tmp_path).scan(folder.name, fix=bool(i % 4 == 0))
        (folder / "index.json").write_bytes(valid)

    fuzz(case, at_least=10)
    assert outside.is_file()
