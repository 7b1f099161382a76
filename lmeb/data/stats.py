"""Per-subset descriptive statistics in mteb's shape, and a comparison with the published ones.

The numbers follow mteb's ``AbsTaskRetrieval`` statistics exactly (the published files in
``lmeb/spec/published_stats/`` come from it):

- document text ``(title + " " + text).strip()`` with missing parts as "" (the official harness's rule;
  current mteb leaves an untitled text unstripped, but the published numbers were made with the strip:
  KnowMeBench flashback_intensive matches only with it); every corpus row counts;
- ``unique_texts`` counts distinct strings; ``num_samples`` = documents + queries;
- relevant docs count qrels rows with a non-zero score, averaged over the queries that have qrels rows;
  ``unique_relevant_docs`` counts every corpus id named in the qrels (score 0 and missing documents too);
- top-ranked lists are the queries' scene candidates (queries without a candidates line have none);
  the average divides by all queries; null for datasets without candidates;
- the dataset-level block concatenates the subsets: a corpus shared by five subsets counts five times in
  the lengths but once in ``unique_texts``; qrels and top-ranked ids are prefixed by subset, so their
  unique counts add up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lmeb.data.lines import read_candidates, read_jsonl, read_qrels, read_queries
from lmeb.data.reader import subset_paths
from lmeb.digest import text_digest
from lmeb.tasks.registry import Selection, Task

Stats = dict[str, Any]


@dataclass
class TextSummary:
    """Lengths and distinct texts of a list of texts, mergeable without keeping the texts."""

    count: int = 0
    total: int = 0
    min: int | None = None
    max: int | None = None
    digests: set[bytes] = field(default_factory=set)

    def add(self, text: str) -> None:
        n = len(text)
        self.count += 1
        self.total += n
        self.min = n if self.min is None else min(self.min, n)
        self.max = n if self.max is None else max(self.max, n)
        self.digests.add(text_digest(text))

    def merge(self, other: TextSummary) -> None:
        if not other.count:
            return
        self.count += other.count
        self.total += other.total
        self.min = other.min if self.min is None else min(self.min, other.min)  # type: ignore[type-var]
        self.max = other.max if self.max is None else max(self.max, other.max)  # type: ignore[type-var]
        self.digests |= other.digests

    def as_dict(self) -> Stats | None:
        if not self.count:
            return None
        return {
            "total_text_length": self.total,
            "min_text_length": self.min,
            "average_text_length": self.total / self.count,
            "max_text_length": self.max,
            "unique_texts": len(self.digests),
        }


def mteb_document_text(obj: dict) -> str:
    """A corpus line's text as the published statistics see it: ``(title + " " + text).strip()``."""
    return (f"{obj.get('title') or ''} {obj.get('text') or ''}").strip()


def corpus_summary(path: Path) -> TextSummary:
    """Stream one corpus file into a TextSummary (every row counts, as in mteb)."""
    summary = TextSummary()
    for _, obj in read_jsonl(path, ("id",)):
        summary.add(mteb_document_text(obj))
    return summary


@dataclass
class _Counts:
    """The numbers of one subset (or of several concatenated) before they become mteb's dicts."""

    docs: TextSummary = field(default_factory=TextSummary)
    queries: TextSummary = field(default_factory=TextSummary)
    relevant_per_query: list[int] = field(default_factory=list)
    unique_relevant: int = 0
    top_ranked_per_query: list[int] = field(default_factory=list)
    has_candidates: bool = False

    def merge(self, other: _Counts) -> None:
        self.docs.merge(other.docs)
        self.queries.merge(other.queries)
        self.relevant_per_query += other.relevant_per_query
        self.unique_relevant += other.unique_relevant
        self.top_ranked_per_query += other.top_ranked_per_query
        self.has_candidates |= other.has_candidates

    def as_dict(self) -> Stats:
        docs, queries = self.docs.as_dict(), self.queries.as_dict()
        rel = self.relevant_per_query
        top = self.top_ranked_per_query
        return {
            "num_samples": self.docs.count + self.queries.count,
            "number_of_characters": self.docs.total + self.queries.total,
            "documents_text_statistics": docs,
            "documents_image_statistics": None,
            "documents_audio_statistics": None,
            "queries_text_statistics": queries,
            "queries_image_statistics": None,
            "queries_audio_statistics": None,
            "relevant_docs_statistics": {
                "num_relevant_docs": sum(rel),
                "min_relevant_docs_per_query": min(rel) if rel else None,
                "average_relevant_docs_per_query": sum(rel) / len(rel) if rel else None,
                "max_relevant_docs_per_query": max(rel) if rel else None,
                "unique_relevant_docs": self.unique_relevant,
            },
            "top_ranked_statistics": {
                "num_top_ranked": sum(top),
                "min_top_ranked_per_query": min(top),
                "average_top_ranked_per_query": sum(top) / self.queries.count,
                "max_top_ranked_per_query": max(top),
            }
            if self.has_candidates and top and self.queries.count
            else None,
        }


def dataset_stats(task: Task, root: Path, subsets: tuple[str, ...] | list[str] | None = None) -> Stats:
    """``{"test": {...aggregate..., "hf_subset_descriptive_stats": {subset: {...}}}}`` as mteb writes it.

    Raises ``DataError`` on unreadable files (run ``lmeb validate`` first). Each corpus is read once.
    """
    names = list(subsets or task.subset_names)
    total = _Counts()
    per_subset: dict[str, Stats] = {}
    corpus_cache: dict[Path, TextSummary] = {}
    scene_cache: dict[Path, dict[str, list[str]]] = {}
    for name in names:
        paths = subset_paths(task, Path(root), name)
        corpus_path, cand_path = paths["corpus"], paths["candidates"]
        assert corpus_path is not None and paths["queries"] is not None and paths["qrels"] is not None
        if corpus_path not in corpus_cache:
            corpus_cache = {corpus_path: corpus_summary(corpus_path)}  # keep one corpus summary at a time
        counts = _Counts(docs=corpus_cache[corpus_path])  # shared, never modified
        query_ids, query_texts, _ = read_queries(paths["queries"])
        for text in query_texts:
            counts.queries.add(text)
        qrels, _ = read_qrels(paths["qrels"])
        counts.relevant_per_query = [sum(1 for score in docs.values() if score != 0) for docs in qrels.values()]
        counts.unique_relevant = len({doc for docs in qrels.values() for doc in docs})
        if cand_path is not None:
            counts.has_candidates = True
            if cand_path not in scene_cache:
                scene_cache = {cand_path: read_candidates(cand_path)[0] if cand_path.is_file() else {}}
            scenes = scene_cache[cand_path]
            for qid in query_ids:
                docs = scenes.get(task.scene_of(qid))
                if docs is not None:
                    counts.top_ranked_per_query.append(len(docs))
        per_subset[name] = counts.as_dict()
        total.merge(counts)
    return {"test": {**total.as_dict(), "hf_subset_descriptive_stats": per_subset}}


def text_count(text_stats: dict | None) -> int:
    """How many texts a mteb text-statistics block describes (total length / average length; 0 if empty)."""
    if not text_stats or not text_stats.get("average_text_length"):
        return 0
    return round(text_stats["total_text_length"] / text_stats["average_text_length"])


def published_stats(task: Task) -> Stats | None:
    """The statistics published for ``task`` (shipped in ``lmeb/spec/published_stats``), or None."""
    path = resources.files("lmeb") / "spec" / "published_stats" / f"{task.name}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def flatten(stats: Stats | None, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; null blocks stay as one null entry."""
    out: dict[str, Any] = {}
    for key, value in (stats or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class Difference:
    """A statistic whose computed value differs from the published one (None where one side lacks it)."""

    key: str
    published: Any
    computed: Any


def compare_subset(published: Stats | None, computed: Stats) -> list[Difference]:
    """The keys of mteb's subset statistics where ``computed`` differs from ``published`` (exact equality)."""
    pub, com = flatten(published), flatten(computed)
    keys = list(pub) + [k for k in com if k not in pub]
    return [Difference(k, pub.get(k), com.get(k)) for k in keys if pub.get(k) != com.get(k)]


@dataclass
class StatsComparison:
    """Per-subset differences of one dataset; a subset matches when it has none."""

    task: Task
    subsets: dict[str, list[Difference]]
    dataset: list[Difference] | None = None  # the aggregate block; None when only some subsets were computed

    @property
    def matching(self) -> list[str]:
        return [name for name, diffs in self.subsets.items() if not diffs]


def compare_stats(task: Task, computed: Stats) -> StatsComparison:
    """Compare ``dataset_stats`` output with the published statistics, subset by subset."""
    pub_all = dict((published_stats(task) or {}).get("test") or {})
    published = pub_all.get("hf_subset_descriptive_stats") or {}
    ours = computed["test"]["hf_subset_descriptive_stats"]
    subsets = {name: compare_subset(published.get(name), stats) for name, stats in ours.items()}
    aggregate = None
    if list(ours) == task.subset_names:
        ours_all = dict(computed["test"])
        pub_all.pop("hf_subset_descriptive_stats", None)
        ours_all.pop("hf_subset_descriptive_stats", None)
        aggregate = compare_subset(pub_all or None, ours_all)
    return StatsComparison(task, subsets, aggregate)


def compute(selections: list[Selection], root: Path) -> dict[str, Stats]:
    """``dataset_stats`` of each selection, keyed by dataset name."""
    return {sel.task.name: dataset_stats(sel.task, root, sel.subsets) for sel in selections}
