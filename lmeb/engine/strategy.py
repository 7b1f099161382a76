"""Retrieval strategies: how one kind of model turns a loaded subset into a run, chosen once per model.

* an ``Encoder`` (``encode(texts, kind, instruction)``): embed documents and queries through the
  embedding store (each unique text once, disk cache), then exact dense search (``lmeb.engine.retrieval``);
* a ``Searcher`` (``search(doc_ids, doc_texts, queries, ...)``, BM25): it ranks the corpus itself;
* a ``Reranker`` (``score(pairs, instruction)``) used as the model: it scores every candidate.

Which protocol a model follows is decided once, in the models layer (``lmeb.models.base.model_type``); an
object that follows none gets one error naming the methods it lacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmeb.embeddings.store import EmbeddingStore, EmbedStats
from lmeb.engine.retrieval import NonFiniteScores, Rows, Run, dense_search, search_subset
from lmeb.errors import LmebError
from lmeb.models.base import model_type

if TYPE_CHECKING:
    from lmeb.data.reader import SubsetData

@contextmanager
def timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    """Add the wall time of the block to ``seconds[stage]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start


class Strategy:
    """What the engine asks of every retrieval strategy beyond ``run``/``texts``/``new_dataset``, with the
    defaults of a strategy that has nothing to add (``lmeb.engine.hybrid.HybridRetrieval`` overrides them)."""

    def prepare(self, runner: Any, selections: list) -> None:
        """Before the run's first dataset (a hybrid with auto weights tunes them here)."""

    def efficiency(self, cost: dict[str, Any]) -> dict[str, Any]:
        """A subset's efficiency block as this strategy accounts it (a hybrid adds its parts and fusion)."""
        return cost

    def subset_provenance(self) -> dict[str, Any]:
        """What this strategy records about the subset it just ran (a hybrid: its weights per fold)."""
        return {}


class DenseRetrieval(Strategy):
    """Encoder path: embed (each unique text once, disk cache), then exact search over candidates."""

    model_type = "encoder"
    steps = "encode + search"

    def __init__(self, encoder: Any, cache_dir: Path | None, progress: Callable[..., Any] | None) -> None:
        self.encoder = encoder
        self.store = EmbeddingStore(encoder, cache_dir, progress=progress)

    @property
    def texts(self) -> EmbedStats:
        return self.store.stats.copy()

    def new_dataset(self) -> None:
        self.store.new_scope()

    def run(self, subset: SubsetData, rows: Rows, k: int, instruction: str | None, seconds: dict[str, float]) -> Run:
        if hasattr(self.encoder, "for_task"):  # vectors that depend on the task (mteb: models): its own encoder
            self.store.use(self.encoder.for_task(subset.task, subset.subset))
        with timed(seconds, "encode"):
            docs = self.store.embed(subset.corpus.texts, "document", None)
            queries = self.store.embed(subset.query_texts, "query", instruction)
        with timed(seconds, "search"):
            try:
                return dense_search(queries, docs, subset, similarity=getattr(self.encoder, "similarity", "cosine"),
                                    k=k, rows=rows)
            except NonFiniteScores as exc:
                name = getattr(self.encoder, "name", type(self.encoder).__name__)
                raise LmebError(f"model {name!r}: {exc}") from None


class _Unembedded(Strategy):
    """What the searcher and reranker paths share: no texts embedded, nothing kept between datasets."""

    @property
    def texts(self) -> EmbedStats:
        return EmbedStats()

    def new_dataset(self) -> None:
        pass


class SearcherRetrieval(_Unembedded):
    """Searcher path (BM25): the model ranks the corpus for the queries itself."""

    model_type = "searcher"
    steps = "search"

    def __init__(self, searcher: Any) -> None:
        self.searcher = searcher

    def run(self, subset: SubsetData, rows: Rows, k: int, instruction: str | None, seconds: dict[str, float]) -> Run:
        with timed(seconds, "search"):
            return search_subset(self.searcher, subset, k, instruction, rows)


class RerankerRetrieval(_Unembedded):
    """Reranker as the model: every candidate of every query is scored as a (query, document) pair."""

    model_type = "reranker"
    steps = "score"

    def __init__(self, reranker: Any) -> None:
        self.reranker = reranker

    def run(self, subset: SubsetData, rows: Rows, k: int, instruction: str | None, seconds: dict[str, float]) -> Run:
        from lmeb.engine.rerank import rerank_candidates

        with timed(seconds, "search"):
            return rerank_candidates(subset, self.reranker, instruction, k, rows)




def strategy_for(model: Any, cache_dir: Path | None = None, progress: Callable[..., Any] | None = None) -> Strategy:
    """The retrieval strategy of ``model``'s protocol (see ``model_type``)."""
    kind = model_type(model)
    if kind == "hybrid":
        return model.retrieval(cache_dir, progress)
    if kind == "encoder":
        return DenseRetrieval(model, cache_dir, progress)
    if kind == "searcher":
        return SearcherRetrieval(model)
    return RerankerRetrieval(model)
