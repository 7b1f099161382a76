"""``lmeb sample``: a deterministic synthetic tree covering every dataset, layout and candidates case."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from lmeb.cli import main as cli
from lmeb.data.reader import is_synthetic, load_subset, load_task
from lmeb.data.sample import GRADED, write_sample
from lmeb.data.sample_text import PEOPLE, TOOLS
from lmeb.errors import LmebError
from lmeb.tasks.registry import all_tasks, get_task

ENTITIES = set(PEOPLE) | set(TOOLS)


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def test_deterministic_from_seed(tmp_path: Path, sample_data: Path) -> None:
    write_sample(tmp_path / "a", seed=0)
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
            assert 3 <= len(sub.query_ids) <= 6 and 10 <= len(sub.corpus) <= 400
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


_QUESTION_WORDS = {"what", "when", "why", "how", "who", "did", "ever", "we", "know", "about", "trying", "want",
                   "the", "a", "an", "to", "in", "of", "and", "it", "go", "with", "set", "out", "helped"}


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower())) - _QUESTION_WORDS


@pytest.mark.slow
def test_ranking_is_a_real_exercise(sample_data: Path) -> None:
    """Queries paraphrase their documents and distractors share their person: word overlap is far from perfect."""
    hits = total = entity_distractors = 0
    chance = 0.0
    grades: dict[bool, set[int]] = {True: set(), False: set()}
    for task in all_tasks():
        for sub in load_task(task, sample_data):
            words = [_words(t) for t in sub.corpus.texts]
            for q, text in zip(sub.query_ids, sub.query_texts, strict=True):
                rows = [sub.corpus.row[d] for d in (sub.candidates(q) or sub.corpus.ids)]
                best = max(rows, key=lambda r: (len(_words(text) & words[r]), r))
                relevant = {d for d, s in sub.qrels[q].items() if s > 0}
                hits += sub.corpus.ids[best] in relevant
                chance += len(relevant) / len(rows)
                total += 1
                # some document that is not relevant names the query's person or tool
                entities = {w for w in text.replace("?", " ").replace(".", " ").split() if w in ENTITIES}
                entity_distractors += any(
                    e in sub.corpus.texts[r] for r in rows if sub.corpus.ids[r] not in relevant for e in entities
                )
                grades[task.name in GRADED].update(sub.qrels[q].values())
    assert 0.2 < hits / total < 0.6 and chance / total < 0.3  # the seed-0 sample: 0.35 and about 0.12
    assert entity_distractors == total
    assert grades == {True: {0, 1, 2}, False: {0, 1}}  # graded where GRADED says, binary elsewhere


def test_cli_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["sample", str(tmp_path / "s"), "--seed", "2"]) == 0
    assert "synthetic" in capsys.readouterr().out
    assert (tmp_path / "s" / "Dialogue" / "LoCoMo" / "candidates.jsonl").is_file()
    assert (tmp_path / "s" / "Dialogue" / "MemBench" / "aggregative" / "candidates.jsonl").is_file()


def test_data_layer_detects_the_sample(tmp_path: Path, sample_data: Path) -> None:
    """By the marker at the root, or by the ids of a dataset copied out of a sample (no marker)."""
    locomo = get_task("LoCoMo")
    sub = load_subset(locomo, sample_data, "single_hop")
    assert is_synthetic(sample_data) and is_synthetic(sample_data, sub)
    shutil.copytree(sample_data / locomo.path, tmp_path / locomo.path)
    assert not is_synthetic(tmp_path)
    copied = load_subset(locomo, tmp_path, "single_hop")
    assert is_synthetic(tmp_path, copied)
    # one real-looking id is enough for "not synthetic"
    corpus = tmp_path / locomo.path / "corpus.jsonl"
    corpus.write_text(corpus.read_text().replace('"synthetic_c0_d', '"conv-26_d', 1))
    assert not is_synthetic(tmp_path, load_subset(locomo, tmp_path, "single_hop"))


def test_real_data_is_not_synthetic(real_data: Path) -> None:
    sub = load_subset(get_task("Proced_mem_bench"), real_data, "easy")
    assert not is_synthetic(real_data) and not is_synthetic(real_data, sub)
