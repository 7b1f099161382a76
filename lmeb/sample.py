"""A small synthetic LMEB tree in the official layout: every dataset and subset of the registry.

It is the fixture data of the test suite and the fallback data of ``make run`` on machines without the
real files. Everything it writes is synthetic (ids start with ``synthetic``, ``SYNTHETIC.md`` at the root)
and deterministic from the seed. It exercises what the readers and the engine must handle: the four
layouts, candidates at the dataset root and in subset folders, both scene-id rules, a scene without a
candidates line (its queries keep the whole corpus), candidates that cover only part of the corpus,
corpora shared by several subsets, several relevant documents per query and a qrels row with score 0.

Each query gets three topic words; its relevant documents repeat two or three of them, distractors use
other words, so lexical (BM25) and neural models score far above chance.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from lmeb.data import subset_paths
from lmeb.errors import LmebError
from lmeb.tasks import Task, all_tasks

SIZES = {"small": 1, "medium": 4}  # multiplier on queries per subset

_WORDS = (  # noqa: SIM905 (a word list reads better as prose)
    "apple river mountain violin castle garden rocket harbor lantern meadow piano desert glacier orchard "
    "bicycle canyon compass dragon engine falcon forest galaxy hammer island jungle kettle ladder magnet "
    "needle ocean pepper quilt rabbit saddle tiger umbrella valley wagon yacht zebra anchor blanket candle "
    "dolphin emerald feather guitar helmet iceberg jacket kitten lemon marble noodle olive parrot quartz "
    "radio salmon tomato unicorn vulture walnut bamboo cactus diamond eagle fountain giraffe honey igloo "
    "jasmine koala lobster mango nectar oyster panda raccoon sunflower telescope tulip volcano whistle "
    "barley cinnamon dentist elevator ferry goblet hazelnut insect jigsaw kayak lighthouse mosaic nutmeg "
    "otter pelican quiver reindeer scarf trombone vinegar wizard acorn beetle chimney drum easel fig "
    "gondola harp ivy juniper kiln lagoon mitten nest oar pretzel robin sled thimble urn vase walrus yarn"
).split()
_FILLER = (  # noqa: SIM905
    "the a of and then later we they it was were with on at in for about after before during "
    "said noted remembered talked mentioned described again today yesterday morning evening"
).split()


@dataclass
class _Query:
    qid: str
    topic: list[str]
    relevant: list[str] = field(default_factory=list)


@dataclass
class _CorpusPlan:
    """The documents of one corpus file and their scenes, for every subset that ranks against it."""

    docs: list[tuple[str, str | None, str]] = field(default_factory=list)  # (id, title or None, text)
    scene_docs: dict[str, list[str]] = field(default_factory=dict)


def _sentence(rng: random.Random, words: list[str], n_filler: int) -> str:
    tokens = words + rng.sample(_FILLER, n_filler)
    rng.shuffle(tokens)
    return " ".join(tokens).capitalize() + "."


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _write_task(task: Task, out: Path, rng: random.Random, mult: int) -> tuple[int, int]:
    groups: dict[Path, list[str]] = {}  # corpus file -> the subsets that share it
    for name in task.subset_names:
        groups.setdefault(subset_paths(task, out, name)["corpus"], []).append(name)  # type: ignore[arg-type]
    n_queries = n_docs = 0
    for corpus_path, subsets in groups.items():
        shared = len(subsets) > 1
        words = rng.sample(_WORDS, len(_WORDS))  # a fresh topic pool per corpus
        pool = itertools.cycle(words)  # repeats only for large sizes
        scene_rule = task.scene_id
        n_scenes = 3 if scene_rule == "first_two_underscore_fields_of_query_id" else 0
        plan = _CorpusPlan()
        per_subset: dict[str, list[_Query]] = {}
        doc_no = 0

        def new_doc(topic: list[str], scene: str | None, *, _plan: _CorpusPlan = plan) -> str:
            nonlocal doc_no
            doc_id = f"synthetic_{scene.split('_', 1)[1]}_d{doc_no}" if scene else f"synthetic-d{doc_no}"
            doc_no += 1
            text = " ".join(_sentence(rng, topic, rng.randint(3, 6)) for _ in range(rng.randint(1, 3)))
            title = rng.choice([None, "", f"Synthetic note {doc_no}"])
            _plan.docs.append((doc_id, title, text))
            if scene is not None:
                _plan.scene_docs.setdefault(scene, []).append(doc_id)
            return doc_id

        for s_idx, name in enumerate(subsets):
            count = (rng.randint(3, 4) if shared else rng.randint(3, 6)) * mult
            queries = []
            for n in range(count):
                # scene c{n_scenes} gets no candidates line: the last query of the first subset goes there
                last = s_idx == 0 and n == count - 1
                scene = f"synthetic_c{n_scenes if last else n % n_scenes}" if n_scenes else None
                qid = f"{scene}_s{s_idx}q{n}" if scene else f"synthetic-s{s_idx}q{n}"
                q = _Query(qid, [next(pool) for _ in range(3)])
                for _ in range(rng.choice([1, 1, 2, 3])):
                    q.relevant.append(new_doc(rng.sample(q.topic, rng.randint(2, 3)), scene))
                queries.append(q)
            per_subset[name] = queries
        # distractors: documents about words no query asks for, some in every scene
        scenes = [f"synthetic_c{k}" for k in range(n_scenes + 1)] if n_scenes else [None]
        for k in range(max(rng.randint(5, 8), 10 - len(plan.docs))):  # at least 10 documents per corpus
            new_doc([next(pool) for _ in range(3)], scenes[k % len(scenes)])
        rng.shuffle(plan.docs)
        _write_jsonl(
            corpus_path,
            [
                {"id": d, "text": t} if title is None else {"id": d, "title": title, "text": t}
                for d, title, t in plan.docs
            ],
        )
        all_doc_ids = [d for d, _, _ in plan.docs]
        cand_rows: list[dict] = []
        for s_idx, name in enumerate(subsets):
            queries = per_subset[name]
            paths = subset_paths(task, out, name)
            _write_jsonl(
                paths["queries"],  # type: ignore[arg-type]
                [{"id": q.qid, "text": f"Synthetic question: what about the {' '.join(q.topic)}?"} for q in queries],
            )
            rows = [f"{q.qid}\t{d}\t1\n" for q in queries for d in q.relevant]
            if s_idx == 0:  # a judged-but-not-relevant row (score 0), as some official qrels have
                other = next(d for d in all_doc_ids if d not in queries[0].relevant)
                rows.append(f"{queries[0].qid}\t{other}\t0\n")
            paths["qrels"].write_text("".join(rows), encoding="utf-8")  # type: ignore[union-attr]
            if scene_rule == "query_id":
                # one line per query: its relevant docs plus a few distractors; the last query has none
                for q in queries[:-1]:
                    extra = rng.sample([d for d in all_doc_ids if d not in q.relevant], 3)
                    cand_rows.append({"scene_id": q.qid, "candidate_doc_ids": sorted(q.relevant + extra)})
            if task.candidates == "subset":
                _write_candidates(paths["candidates"], scene_rule, cand_rows, plan)  # type: ignore[arg-type]
                cand_rows = []
            n_queries += len(queries)
        if task.candidates == "dataset_root":
            # the dataset-root candidates path is the same for every subset
            _write_candidates(paths["candidates"], scene_rule, cand_rows, plan)  # type: ignore[arg-type]
        n_docs += len(plan.docs)
    return n_queries, n_docs


def _write_candidates(path: Path, rule: str | None, rows: list[dict], plan: _CorpusPlan) -> None:
    if rule == "first_two_underscore_fields_of_query_id":
        # one line per scene but the last: queries of that scene keep the whole corpus
        scenes = sorted(s for s in plan.scene_docs if s != max(plan.scene_docs))
        rows = [{"scene_id": s, "candidate_doc_ids": plan.scene_docs[s]} for s in scenes]
    _write_jsonl(path, rows)


def write_sample(out: Path, seed: int = 0, size: str = "small") -> Path:
    """Write the synthetic tree under ``out`` (created; existing sample files are overwritten); returns ``out``."""
    if size not in SIZES:
        raise LmebError(f"unknown sample size {size!r}; expected one of {', '.join(SIZES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for task in all_tasks():
        rng = random.Random(f"lmeb-sample:{seed}:{task.name}")
        n_q, n_d = _write_task(task, out, rng, SIZES[size])
        lines.append(
            f"| {task.path} | {task.layout} | {task.candidates or '-'} | {len(task.subsets)} | {n_q} | {n_d} |"
        )
    (out / "SYNTHETIC.md").write_text(
        "# SYNTHETIC data: not LMEB\n\n"
        f"Written by `lmeb sample` (seed {seed}, size {size}) for tests and demos. Every id starts with\n"
        "`synthetic`; texts are random word salads. Scores on it say nothing about a model.\n\n"
        "| dataset | layout | candidates | subsets | queries | documents |\n|---|---|---|---|---|---|\n"
        + "\n".join(lines)
        + "\n",
        encoding="utf-8",
    )
    return out
