"""A small synthetic LMEB tree in the official layout: every dataset and subset of the registry.

It is the fixture data of the test suite and the fallback data of ``make run`` on machines without the
real files. Everything it writes is synthetic (ids start with ``synthetic``, ``SYNTHETIC.md`` at the root)
and deterministic from the seed. It exercises what the readers and the engine must handle: the four
layouts, candidates at the dataset root and in subset folders, both scene-id rules, a scene without a
candidates line (its queries keep the whole corpus), candidates that cover only part of the corpus,
corpora shared by several subsets, several relevant documents per query and a qrels row with score 0.

It is also a real, if small, ranking exercise (``lmeb.data.sample_text`` has the words): each query asks
about one event (who did what) in other words than its document states it, about as many relevant
documents as the dataset has per query (the paper's Table 1, capped at 4: the document stating the
event plus later mentions of it, graded 2 and 1 in ``GRADED`` datasets), and distractors that share
the query's person or tool, its date, or a close event of the same family. BM25 and a small neural
encoder land far from both chance and 100 and differ from each other.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from lmeb.data import sample_text as words
from lmeb.data.reader import SYNTHETIC_ID_PREFIX, SYNTHETIC_MARKER, subset_paths
from lmeb.errors import LmebError
from lmeb.files import writable_folder
from lmeb.tasks.registry import Task, all_tasks

SIZES = {"small": 1, "medium": 4}  # multiplier on queries per subset
# where relevant documents are graded (2: states the event, 1: a later mention); the spec does not say
# which official qrels are graded (the rebuilt ones are binary), so these are the sample's own choice
GRADED = frozenset({"EPBench", "TMD", "DeepPlanning"})
LEXICAL = 0.3  # share of queries worded like their main document


@dataclass(frozen=True)
class _Event:
    entity: str  # a person, or a tool for procedural memory
    concept: tuple[int, int]  # (family, concept) in the word bank
    place: str
    date: tuple[str, str]  # as a document writes it, as a query names it


@dataclass
class _Query:
    qid: str
    text: str
    relevant: dict[str, int] = field(default_factory=dict)  # doc id -> grade
    distractors: list[str] = field(default_factory=list)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


class _Corpus:
    """The documents of one corpus file and their scenes, written in the memory type's style."""

    def __init__(self, task: Task, rng: random.Random) -> None:
        self.task, self.rng = task, rng
        self.tools = task.memory_type == "Procedural"
        self.bank = words.TASKS if self.tools else words.LIFE
        self.docs: list[tuple[str, str | None, str]] = []  # (id, title or None, text)
        self.scene_docs: dict[str, list[str]] = {}

    def wording(self, event: _Event, index: int) -> str:
        family, concept = event.concept
        return self.bank[family][concept][index]

    def event(self, entity: str, concept: tuple[int, int] | None = None) -> _Event:
        rng = self.rng
        if concept is None:
            concept = (rng.randrange(len(self.bank)), rng.randrange(3))
        return _Event(entity, concept, rng.choice(words.PLACES), words.date_words(rng))

    def add(
        self, event: _Event, wording: int, scene: str | None, *, mention: bool = False, negated: bool = False,
        padding: int = 1,
    ) -> str:
        """Write one document about ``event`` (``mention``: a later reference to it) with about ``padding``
        sentences of small talk around it (a relevant document says more than the event); returns its id."""
        rng, n = self.rng, len(self.docs)
        doc_id = f"{SYNTHETIC_ID_PREFIX}_{scene.split('_', 1)[1]}_d{n}" if scene else f"{SYNTHETIC_ID_PREFIX}-d{n}"
        what, who = self.wording(event, wording), event.entity
        fillers = " ".join(rng.sample(words.TOOL_FILLERS if self.tools else words.FILLERS, rng.randint(0, 2) + padding))
        title: str | None = rng.choice([None, "", f"Note {n}"])
        # negated: the event that did not happen (a tool that cannot do it): the same words, the wrong answer
        negation = rng.choice(words.TOOL_NEGATIONS if self.tools else words.NEGATIONS)
        if self.tools and negated:
            text = f"{who}: this module {negation} {what}. {fillers}"
        elif self.tools:
            title = rng.choice([None, f"{who} tool {n}"])
            text = (f"{who} example: a worked example showing how to {what}." if mention
                    else f"{who}: {rng.choice(words.TOOL_LEADS)} {what}. {fillers}")
        elif self.task.memory_type == "Dialogue":
            title = f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d} pm on {event.date[0]}"
            other = rng.choice([p for p in words.PEOPLE if p != who])
            message = (f"{who}, how was it when you got to {what}?" if mention
                       else f"Honestly, I {negation} {what}. {fillers}" if negated
                       else f"{rng.choice(words.FIRST_PERSON)} {what}! {fillers}")
            text = f"Speaker: {other if mention else who}\nMessage: {message}"
        elif negated:
            text = f"{fillers} {who} {negation} {what}."
        elif mention:
            text = f"{fillers} {who} {rng.choice(words.FOLLOW_UPS)} {what}."
        elif self.task.memory_type == "Semantic":
            text = f"{fillers} According to notes from {event.place}, {who} {rng.choice(words.LEADS)} {what}."
        else:
            text = f"On {event.date[0]}, {who} {rng.choice(words.LEADS)} {what} in {event.place}. {fillers}"
        self.docs.append((doc_id, title, text.strip()))
        if scene is not None:
            self.scene_docs.setdefault(scene, []).append(doc_id)
        return doc_id

    def query(self, qid: str, cast: list[str], scene: str | None, n_relevant: int, graded: bool) -> _Query:
        """A query about a new event of one of ``cast``, its relevant documents and its distractors."""
        rng = self.rng
        entity = rng.choice(cast)
        event = self.event(entity)
        main = rng.randrange(3)
        asked = main if rng.random() < LEXICAL else rng.choice([i for i in range(3) if i != main])
        others = [p for p in cast if p != entity]  # in a conversation: the other speaker
        template = rng.choice(words.TOOL_QUESTIONS if self.tools else words.QUESTIONS)
        text = template.format(p=entity, o=rng.choice(others), c=self.wording(event, asked))
        if not self.tools and rng.random() < 0.3:  # a date that distractors may share
            text = f"{text[:-1]} {event.date[1]}{text[-1]}"
        q = _Query(qid, text)
        q.relevant[self.add(event, main, scene, padding=3)] = 2 if graded else 1
        for _ in range(n_relevant - 1):  # later mentions, in other words than the query's when possible
            later = self.event(entity, event.concept)
            wording = rng.choice([i for i in range(3) if i != asked])
            q.relevant[self.add(later, wording, scene, mention=True, padding=3)] = 1
        family, concept = event.concept
        near = (family, rng.choice([c for c in range(3) if c != concept]))  # a close event of the same person
        q.distractors.append(self.add(self.event(entity, near), rng.randrange(3), scene, padding=0))
        for _ in range(rng.randint(1, 2)):  # the same event of someone else, often in the query's words
            same = self.event(rng.choice(others), event.concept)
            q.distractors.append(self.add(same, asked if rng.random() < 0.5 else rng.randrange(3), scene, padding=0))
        if rng.random() < 0.7:  # the same person and event, but it did not happen (or is not supported)
            wording = asked if rng.random() < 0.5 else rng.randrange(3)
            q.distractors.append(self.add(event, wording, scene, negated=True, padding=0))
        if rng.random() < 0.5:  # the same person on the same date, doing something else
            other = _Event(entity, (rng.randrange(len(self.bank)), rng.randrange(3)), event.place, event.date)
            q.distractors.append(self.add(other, rng.randrange(3), scene, padding=0))
        return q


def _n_relevant(task: Task, rng: random.Random) -> int:
    """1 where the dataset has one relevant document per query, else 1-4 around its Table 1 average."""
    avg = float(task.paper_table1.get("avg_relevant_per_query") or 1.0)
    return 1 if avg < 1.05 else rng.randint(1, min(4, max(2, round(avg * 1.5))))


def _write_task(task: Task, out: Path, rng: random.Random, mult: int) -> tuple[int, int]:
    groups: dict[Path, list[str]] = {}  # corpus file -> the subsets that share it
    for name in task.subset_names:
        groups.setdefault(subset_paths(task, out, name)["corpus"], []).append(name)  # type: ignore[arg-type]
    n_queries = n_docs = 0
    entities = words.TOOLS if task.memory_type == "Procedural" else words.PEOPLE
    for corpus_path, subsets in groups.items():
        shared = len(subsets) > 1
        scene_rule = task.scene_id
        n_scenes = 3 if scene_rule == "first_two_underscore_fields_of_query_id" else 0
        corpus = _Corpus(task, rng)
        # the people (tools) a corpus is about: two per scene, as in a conversation; else a small cast
        cast = rng.sample(entities, 2 * (n_scenes + 1) if n_scenes else 5)
        per_subset: dict[str, list[_Query]] = {}
        for s_idx, name in enumerate(subsets):
            count = (rng.randint(3, 4) if shared else rng.randint(3, 6)) * mult
            queries = []
            for n in range(count):
                # scene c{n_scenes} gets no candidates line: the last query of the first subset goes there
                last = s_idx == 0 and n == count - 1
                k = n_scenes if last else n % n_scenes if n_scenes else 0
                scene = f"synthetic_c{k}" if n_scenes else None
                qid = f"{scene}_s{s_idx}q{n}" if scene else f"synthetic-s{s_idx}q{n}"
                people = cast[2 * k : 2 * k + 2] if n_scenes else cast
                queries.append(corpus.query(qid, people, scene, _n_relevant(task, rng), task.name in GRADED))
            per_subset[name] = queries
        # background: other events of the same cast, some in every scene
        scenes = [f"synthetic_c{k}" for k in range(n_scenes + 1)] if n_scenes else [None]
        for k in range(max(rng.randint(4, 8), 10 - len(corpus.docs))):  # at least 10 documents per corpus
            scene = scenes[k % len(scenes)]
            pair = cast[2 * (k % len(scenes)) : 2 * (k % len(scenes)) + 2] if n_scenes else cast
            corpus.add(corpus.event(rng.choice(pair)), rng.randrange(3), scene)
        rng.shuffle(corpus.docs)
        _write_jsonl(
            corpus_path,
            [{"id": d, "text": t} if title is None else {"id": d, "title": title, "text": t}
             for d, title, t in corpus.docs],
        )
        all_doc_ids = [d for d, _, _ in corpus.docs]
        cand_rows: list[dict] = []
        for s_idx, name in enumerate(subsets):
            queries = per_subset[name]
            paths = subset_paths(task, out, name)
            _write_jsonl(paths["queries"], [{"id": q.qid, "text": q.text} for q in queries])  # type: ignore[arg-type]
            rows = [f"{q.qid}\t{d}\t{g}\n" for q in queries for d, g in q.relevant.items()]
            if s_idx == 0:  # a judged-but-not-relevant row (score 0), as some official qrels have
                rows.append(f"{queries[0].qid}\t{queries[0].distractors[0]}\t0\n")
            paths["qrels"].write_text("".join(rows), encoding="utf-8")  # type: ignore[union-attr]
            if scene_rule == "query_id":
                # one line per query: its relevant docs, its distractors and a few others; the last query has none
                for q in queries[:-1]:
                    mine = set(q.relevant) | set(q.distractors)
                    extra = rng.sample([d for d in all_doc_ids if d not in mine], 4)
                    cand_rows.append({"scene_id": q.qid, "candidate_doc_ids": sorted(mine | set(extra))})
            if task.candidates == "subset":
                _write_candidates(paths["candidates"], scene_rule, cand_rows, corpus)  # type: ignore[arg-type]
                cand_rows = []
            n_queries += len(queries)
        if task.candidates == "dataset_root":
            # the dataset-root candidates path is the same for every subset
            _write_candidates(paths["candidates"], scene_rule, cand_rows, corpus)  # type: ignore[arg-type]
        n_docs += len(corpus.docs)
    return n_queries, n_docs


def _write_candidates(path: Path, rule: str | None, rows: list[dict], corpus: _Corpus) -> None:
    if rule == "first_two_underscore_fields_of_query_id":
        # one line per scene but the last: queries of that scene keep the whole corpus
        scenes = sorted(s for s in corpus.scene_docs if s != max(corpus.scene_docs))
        rows = [{"scene_id": s, "candidate_doc_ids": corpus.scene_docs[s]} for s in scenes]
    _write_jsonl(path, rows)


def write_sample(out: Path, seed: int = 0, size: str = "small") -> Path:
    """Write the synthetic tree under ``out`` (created; existing sample files are overwritten); returns ``out``."""
    if size not in SIZES:
        raise LmebError(f"unknown sample size {size!r}; expected one of {', '.join(SIZES)}")
    out = writable_folder(out, "the sample", "choose another OUT")  # read-only, /proc, a file: one line
    lines = []
    for task in all_tasks():
        rng = random.Random(f"lmeb-sample:{seed}:{task.name}")
        n_q, n_d = _write_task(task, out, rng, SIZES[size])
        lines.append(
            f"| {task.path} | {task.layout} | {task.candidates or '-'} | {len(task.subsets)} | {n_q} | {n_d} |"
        )
    (out / SYNTHETIC_MARKER).write_text(
        "# SYNTHETIC data: not LMEB\n\n"
        f"Written by `lmeb sample` (seed {seed}, size {size}) for tests and demos. Every id starts with\n"
        "`synthetic`; texts are generated from a small word bank: queries paraphrase their documents and\n"
        "distractors share their people, tools and dates, so rankings are not trivial, but scores on it\n"
        "say nothing about a model. Results computed on it are marked synthetic.\n\n"
        "| dataset | layout | candidates | subsets | queries | documents |\n|---|---|---|---|---|---|\n"
        + "\n".join(lines)
        + "\n",
        encoding="utf-8",
    )
    return out
