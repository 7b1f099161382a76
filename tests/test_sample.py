"""``lmeb sample``: a deterministic synthetic tree covering every dataset, layout and candidates case."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pytest

from lmeb.cli import main as cli
from lmeb.data import load_task
from lmeb.errors import LmebError
from lmeb.sample import write_sample
from lmeb.tasks import all_tasks


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def test_deterministic_from_seed_and_fast(tmp_path: Path, sample_data: Path) -> None:
    start = time.perf_counter()
    write_sample(tmp_path / "a", seed=0)
    assert time.perf_counter() - start < 3  # about 0.3 s; generous for a loaded CI machine
    assert _digest(tmp_path / "a") == _digest(sample_data)
    write_sample(tmp_path / "b", seed=1)
    assert _digest(tmp_path / "b") != _digest(sample_data)
    with pytest.raises(LmebError, match="unknown sample size 'huge'"):
        write_sample(tmp_path / "c", size="huge")


def test_covers_every_dataset_and_case(sample_data: Path) -> None:
    assert "SYNTHETIC" in (sample_data / "SYNTHETIC.md").read_text()
    n_subsets = whole_corpus = partial = multi_relevant = shared = 0
    for task in all_tasks():
        corpora = set()
        for sub in load_task(task, sample_data):
            n_subsets += 1
            corpora.add(id(sub.corpus))
            assert 3 <= len(sub.query_ids) <= 6 and 10 <= len(sub.corpus) <= 100
            assert all(i.startswith("synthetic") for i in sub.query_ids + sub.corpus.ids)
            multi_relevant += sum(len(d) > 1 for d in sub.qrels.values())
            for q in sub.query_ids:
                candidates = sub.candidates(q)
                if task.candidates and candidates is None:
                    whole_corpus += 1
                elif candidates is not None and len(candidates) < len(sub.corpus):
                    partial += 1
        shared += len(corpora) < len(task.subsets)
    assert n_subsets == 193
    assert whole_corpus and partial and multi_relevant and shared >= 5


def test_relevant_documents_share_words_with_their_query(sample_data: Path) -> None:
    """A word-overlap ranker puts a relevant document first far above chance (BM25 and models will too)."""
    hits = total = 0
    chance = 0.0
    for task in all_tasks():
        for sub in load_task(task, sample_data):
            words = [set(re.findall(r"[a-z]+", t.lower())) for t in sub.corpus.texts]
            for q, text in zip(sub.query_ids, sub.query_texts, strict=True):
                topic = set(re.findall(r"[a-z]+", text.lower())) - {"synthetic", "question", "what", "about", "the"}
                rows = [sub.corpus.row[d] for d in (sub.candidates(q) or sub.corpus.ids)]
                best = max(rows, key=lambda r: len(topic & words[r]))
                relevant = {d for d, s in sub.qrels[q].items() if s > 0}
                hits += sub.corpus.ids[best] in relevant
                chance += len(relevant) / len(rows)
                total += 1
    assert hits / total > 0.95 and chance / total < 0.3


def test_cli_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["sample", str(tmp_path / "s"), "--seed", "2"]) == 0
    assert "synthetic" in capsys.readouterr().out
    assert (tmp_path / "s" / "Dialogue" / "LoCoMo" / "candidates.jsonl").is_file()
    assert (tmp_path / "s" / "Dialogue" / "MemBench" / "aggregative" / "candidates.jsonl").is_file()
