"""See why a score is what it is: one subset's queries joined with their texts, judgements and rankings.

``inspect_subset`` reads a model's results (the per-query values and the rankings sidecar,
``lmeb.results.rankings``) and the subset's data (query texts, instruction, qrels, document texts), picks
queries, and returns an ``Inspection``: per query its text and instruction, its metric values, every
relevant document (grade, excerpt, the rank the model gave it, ``None`` = below the kept top 100) and
the top ``k`` retrieved (rank, score, id, grade, excerpt). Which queries:

* ``worst=N``: the N lowest by the main score (``ndcg_at_10``) of the per-query file, ties by query id;
* ``queries=[...]``: those ids, in that order;
* ``versus=OTHER``: the N queries where the two models' main scores differ most (absolute difference,
  ties by query id), each with both models' rankings (N = ``worst``, default 10).

``lmeb.inspect.render`` writes it as text, JSON or one self-contained HTML page; ``Inspection.to_frame``
is what ``lmeb.Results.inspect`` returns. A missing or damaged rankings sidecar is one line in
``notes`` (the metric values are still shown), never an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmeb.engine.metrics import MAIN_SCORE
from lmeb.errors import LmebError
from lmeb.results.dataset_result import DatasetResult, SubsetResult
from lmeb.results.rankings import read_rankings
from lmeb.wording import counted

EXCERPT = 240  # characters of a document's text shown
DEFAULT_WORST = 10


@dataclass
class Hit:
    """One document in a query's view: its rank by this model (None = not in the kept top 100)."""

    doc_id: str
    rank: int | None
    score: float | None
    grade: int
    excerpt: str


@dataclass
class ModelView:
    """What one model did for one query: metric values, the top k, and the ranks of the relevant documents."""

    model: str
    metrics: dict[str, float]
    top: list[Hit]
    relevant: list[Hit]


@dataclass
class QueryView:
    query_id: str
    text: str
    views: list[ModelView]  # the model's, then --versus's


@dataclass
class Inspection:
    dataset: str
    subset: str
    setting: str
    models: list[str]
    instruction: str | None
    k: int
    selection: str  # how the queries were picked, in words
    queries: list[QueryView] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # one line each: a missing rankings sidecar...

    def to_frame(self) -> Any:
        """One row per (query, model, document shown): role ``retrieved`` (top k) or ``relevant``."""
        import pandas as pd

        rows = [(q.query_id, q.text, v.model, v.metrics.get(MAIN_SCORE), role, h.rank, h.score, h.doc_id, h.grade,
                 h.excerpt)
                for q in self.queries for v in q.views
                for role, hits in (("retrieved", v.top), ("relevant", v.relevant)) for h in hits]
        return pd.DataFrame(rows, columns=["query_id", "query", "model", MAIN_SCORE, "role", "rank", "score",
                                           "doc_id", "grade", "excerpt"])


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """The first ``limit`` characters of ``text`` on one line (``...`` when cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 3].rstrip() + "..."


def find_result(results: Sequence[DatasetResult], model: str, dataset: str, setting: str | None) -> DatasetResult:
    """The results of ``model`` on ``dataset`` (in ``setting``; the only one, or wo_inst, when None)."""
    from lmeb.report.aggregate import resolve_model

    name = resolve_model(results, model)
    found = [r for r in results if r.model == name and r.task_name.lower() == dataset.lower()]
    if setting is not None:
        found = [r for r in found if r.setting == setting]
    if not found:
        where = f" in setting {setting}" if setting else ""
        raise LmebError(f"no results of {name} on {dataset}{where}")
    if len(found) > 1:
        found = [r for r in found if r.setting == "wo_inst"] or found[:1]
    return found[0]


def find_subset(result: DatasetResult, subset: str | None) -> SubsetResult:
    """The subset named ``subset`` (any case); the only one when None."""
    if subset is None:
        if len(result.subsets) == 1:
            return next(iter(result.subsets.values()))
        raise LmebError(f"{result.task_name} has {len(result.subsets)} subsets: name one as "
                        f"{result.task_name}/SUBSET ({', '.join(result.subsets)})")
    for name, sub in result.subsets.items():
        if name.lower() == subset.lower():
            return sub
    raise LmebError(f"{result.path or result.task_name}: no subset {subset!r} (it has {', '.join(result.subsets)})")


def main_scores(result: DatasetResult, sub: SubsetResult) -> dict[str, float]:
    """query id -> main score, from the per-query values; a one-line error when they are missing."""
    values = sub.per_query.get(MAIN_SCORE)
    if not values or len(values) != len(sub.query_ids):
        raise LmebError(f"{result.path or result.task_name}: no per-query {MAIN_SCORE} for subset {sub.subset} "
                        "(its .per_query.json is missing or damaged; rerun with --overwrite)")
    return dict(zip(sub.query_ids, values, strict=True))


def pick_queries(scores: dict[str, float], worst: int | None = None, queries: Sequence[str] | None = None,
                 other: dict[str, float] | None = None) -> list[str]:
    """The query ids to show (see the module docstring for the three rules)."""
    if queries:
        unknown = [q for q in queries if q not in scores]
        if unknown:
            raise LmebError(f"{counted(len(unknown), 'query id')} not in the per-query file: {', '.join(unknown[:5])}")
        return list(dict.fromkeys(queries))
    n = DEFAULT_WORST if worst is None else worst
    if n < 1:
        raise LmebError("--worst must be at least 1")
    if other is not None:
        common = [q for q in scores if q in other]
        return sorted(common, key=lambda q: (-abs(scores[q] - other[q]), q))[:n]
    return sorted(scores, key=lambda q: (scores[q], q))[:n]


def _view(model: str, result: DatasetResult, sub: SubsetResult, qid: str, qrels: dict[str, int],
          texts: dict[str, str], k: int, notes: list[str]) -> ModelView:
    metrics = {m: vals[sub.query_ids.index(qid)] for m, vals in sub.per_query.items()}
    if sub.rankings is None and result.path is not None:
        sub.rankings, why = read_rankings(result.path, sub.provenance)
        if sub.rankings is None and f"{model}: {why}" not in notes:
            notes.append(f"{model}: {why}")
    ranked = (sub.rankings or {}).get(qid, [])
    rank_of = {d: i for i, (d, _) in enumerate(ranked, start=1)}
    score_of = dict(ranked)
    top = [Hit(d, i, s, qrels.get(d, 0), excerpt(texts.get(d, ""))) for i, (d, s) in enumerate(ranked[:k], start=1)]
    relevant = [Hit(d, rank_of.get(d), score_of.get(d), g, excerpt(texts.get(d, "")))
                for d, g in sorted(qrels.items(), key=lambda item: (-item[1], item[0])) if g > 0]
    return ModelView(model, metrics, top, relevant)


def inspect_subset(results: Sequence[DatasetResult], model: str, task: str, *, setting: str | None = None,
                   worst: int | None = None, queries: Sequence[str] | None = None, versus: str | None = None,
                   k: int = 10, data: str | Path | None = None) -> Inspection:
    """The ``Inspection`` of ``task`` (``Dataset/subset``) for ``model`` (see the module docstring)."""
    from lmeb.data.mteb_format import open_reader
    from lmeb.data.reader import data_root
    from lmeb.tasks.registry import get_task

    if k < 1:
        raise LmebError("--k must be at least 1")
    dataset, _, subset_name = task.partition("/")
    result = find_result(results, model, dataset, setting)
    sub = find_subset(result, subset_name or None)
    scores = main_scores(result, sub)
    pairs = [(result, sub)]
    other_scores = None
    if versus is not None:
        other = find_result(results, versus, result.task_name, result.setting)
        other_sub = find_subset(other, sub.subset)
        other_scores = main_scores(other, other_sub)
        pairs.append((other, other_sub))
    picked = pick_queries(scores, worst, queries, other_scores)
    selection = (f"queries {', '.join(picked)}" if queries else
                 f"the {len(picked)} queries where {pairs[0][0].model} and {versus} differ most in {MAIN_SCORE}"
                 if versus else f"the {len(picked)} lowest {MAIN_SCORE} (ties by query id)")
    loaded = open_reader(get_task(result.task_name), data_root(data)).load(sub.subset)  # as the run read it
    texts = dict(zip(loaded.corpus.ids, loaded.corpus.texts, strict=True))
    query_text = dict(zip(loaded.query_ids, loaded.query_texts, strict=True))
    out = Inspection(result.task_name, sub.subset, result.setting, [r.model for r, _ in pairs],
                     sub.provenance.get("instruction"), k, selection)
    for qid in picked:
        views = [_view(r.model, r, s, qid, loaded.qrels.get(qid, {}), texts, k, out.notes) for r, s in pairs
                 if qid in s.query_ids]
        out.queries.append(QueryView(qid, query_text.get(qid, ""), views))
    return out
