"""BM25 as mteb 2.26.24 runs it (``mteb/baseline-bm25s``): bm25s + PyStemmer, English settings.

Reproduced from mteb's ``BM25Search`` for English tasks (all of LMEB):

* tokenizer: ``bm25s.tokenize`` defaults (lower-case, ``(?u)\\b\\w\\w+\\b``), bm25s' English stop words,
  the Snowball ``english`` stemmer; the same for documents and queries;
* scoring: ``bm25s.BM25(k1=1.5, b=0.75, delta=0.5, method="lucene")`` over the WHOLE subset corpus
  (document frequencies over every document, as the official "index corpus, rank, then filter" does);
  a document is title and text (mteb joins them with a newline, lmeb's corpus with a space: the same
  tokens);
* query tokens outside the corpus vocabulary are dropped; a query with no known token (or none left
  after stop words) scores 0 for every document, so its ranking is the tie rule's (doc id descending);
* instructions: mteb's BM25 never sees LMEB's task instruction (it only appends a per-query
  ``instruction`` column, which LMEB has none of), so w/ inst. equals w/o inst.; ``use_instruction=True``
  appends ``" " + instruction`` to each query as mteb would with such a column.

BM25 is a ``Searcher``: plain corpus and query texts in, rankings out (no data-layer types). A query
with candidates gets the scores of those rows only, equal to the rows of its full-corpus score vector
(``BM25Searcher.scores``), ranked by ``lmeb.ordering.search_scores`` (the shared candidate logic and tie
rule). Difference from mteb: mteb keeps the global top 1000 before
filtering to candidates; lmeb, like the official harness, keeps every candidate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmeb.digest import texts_digest
from lmeb.errors import LmebError
from lmeb.models.bm25_index import build_index
from lmeb.ordering import Ranking, search_scores

METHODS = ("robertson", "lucene", "atire", "bm25l", "bm25+")
ADAPTER_VERSION = 1


class BM25Searcher:
    """Lexical search: index a corpus once (reused while the same texts come back), score each query
    over the whole corpus, rank its candidates. Ignores instructions unless ``use_instruction``."""

    def __init__(
        self,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        delta: float = 0.5,
        stopwords: str | None = "en",
        stemmer: str | None = "english",
        use_instruction: bool = False,
        name: str = "bm25",
    ) -> None:
        if method not in METHODS:
            raise LmebError(f"unknown BM25 method {method!r}; choose one of {', '.join(METHODS)}")
        self.k1, self.b, self.delta, self.method = float(k1), float(b), float(delta), method
        self.stopwords = stopwords
        self.stemmer_language = stemmer
        self.use_instruction = bool(use_instruction)
        self.name = name
        self._stemmer: Any = None
        if stemmer:
            import Stemmer

            try:
                self._stemmer = Stemmer.Stemmer(stemmer)
            except KeyError as exc:
                raise LmebError(f"unknown stemmer language {stemmer!r}") from exc
        self._corpus_key: str | None = None
        self._retriever: Any = None
        self._texts: list[str] | None = None  # the indexed texts (a shallow copy)
        self.index_count = 0  # how many times a corpus was indexed (one per distinct corpus in a run)

    @property
    def uses_instructions(self) -> bool:
        """Whether the task instruction changes the ranking (False by default, as mteb's BM25)."""
        return self.use_instruction

    @property
    def stats(self) -> dict[str, int]:
        """Counters recorded per subset in the results' provenance (``model_counts``)."""
        return {"corpora_indexed": self.index_count}

    def _tokenize(self, texts: list[str]) -> Any:
        import bm25s

        return bm25s.tokenize(texts, stopwords=self.stopwords, stemmer=self._stemmer, show_progress=False)

    def index(self, doc_texts: list[str]) -> Any:
        """The bm25s index of ``doc_texts``, built once; only the latest corpus is kept (keyed by content).

        The same texts again (a corpus shared by several subsets comes back as the same list) are
        recognised by an identity check per item, without hashing the whole corpus once per subset.
        """
        if self._retriever is not None and self._texts == doc_texts:
            return self._retriever
        key = texts_digest(doc_texts)
        if self._retriever is not None and key == self._corpus_key:
            self._texts = list(doc_texts)
            return self._retriever
        import bm25s

        self._retriever = self._texts = None  # free the previous index first
        retriever = bm25s.BM25(k1=self.k1, b=self.b, delta=self.delta, method=self.method)
        build_index(retriever, doc_texts, self.stopwords, self._stemmer)  # = retriever.index(self._tokenize(...))
        self._retriever, self._corpus_key, self._texts = retriever, key, list(doc_texts)
        self.index_count += 1
        return retriever

    def query_tokens(self, texts: list[str]) -> list[list[str]]:
        """Each query's tokens (stemmed strings), as mteb passes them to ``BM25.retrieve``."""
        import bm25s

        tokenized = self._tokenize(texts)
        return bm25s.tokenization.convert_tokenized_to_string_list(tokenized)

    def scores(self, retriever: Any, tokens: list[str], rows: np.ndarray | None = None) -> np.ndarray:
        """One query's float32 BM25 scores for every corpus document, or for corpus ``rows`` only.

        Every document: bm25s' own ``get_scores``. ``rows``: the same sums for those documents only, so
        a query's cost follows its candidates, not the corpus (ranking every query of a 1M-document
        MemBench corpus against all of it made BM25 search quadratic in the corpus size). Each row's
        score adds the query tokens' index entries in query order in the index dtype, starting from 0,
        as ``get_scores`` does, so the values are identical (tests/test_bm25.py checks it).
        """
        if rows is not None and _sorted_postings(retriever):
            return _row_scores(retriever, tokens, rows)
        full = (retriever.get_scores(tokens) if tokens
                else np.zeros(retriever.scores["num_docs"], dtype=retriever.dtype))
        return full if rows is None else full[rows]

    def search(self, doc_ids: list[str], doc_texts: list[str], queries: list[str], k: int = 1000,
               instruction: str | None = None, candidates: list[np.ndarray | None] | None = None,
               ) -> list[Ranking]:
        """One ranking per query (doc id -> score, rank order) over its candidates (None = whole corpus)."""
        if len(doc_ids) != len(doc_texts):
            raise LmebError(f"bm25: {len(doc_ids)} document ids for {len(doc_texts)} texts")
        rows = [None] * len(queries) if candidates is None else candidates
        if not doc_ids:  # nothing to index (bm25s cannot index an empty corpus): every ranking is empty
            return [{} for _ in queries]
        retriever = self.index(doc_texts)
        texts = list(queries)
        if self.use_instruction and instruction is not None:
            texts = [f"{text} {instruction}" for text in texts]
        tokens = self.query_tokens(texts)

        def score_fn(query_index: int, cand: np.ndarray | None) -> np.ndarray:
            return self.scores(retriever, tokens[query_index], cand)

        return search_scores(score_fn, rows, doc_ids, k)

    def config(self) -> dict[str, Any]:
        """Everything that changes the scores (provenance)."""
        import bm25s

        return {
            "class": "BM25Searcher",
            "adapter_version": ADAPTER_VERSION,
            "model": self.name,
            "bm25s": bm25s.__version__,
            "k1": self.k1,
            "b": self.b,
            "delta": self.delta,
            "method": self.method,
            "stopwords": self.stopwords,
            "stemmer": self.stemmer_language,
            "use_instruction": self.use_instruction,
        }


def _sorted_postings(retriever: Any) -> bool:
    """Whether each token's posting list in the bm25s index (CSC ``indices``) is in ascending row order.

    bm25s builds it so; checked once per index (O(entries)) because ``_row_scores`` searches it.
    """
    cached = getattr(retriever, "_lmeb_sorted_postings", None)
    if cached is None:
        indices, indptr = retriever.scores["indices"], retriever.scores["indptr"]
        ascending = indices[1:] > indices[:-1]  # no int64 copy or difference of every entry (0.6 GB at 1M docs)
        starts = indptr[1:-1]
        starts = starts[(starts > 0) & (starts < len(indices))]
        ascending[starts - 1] = True  # a new posting list may start lower
        cached = bool(ascending.all())
        retriever._lmeb_sorted_postings = cached
    return cached


def _row_scores(retriever: Any, tokens: list[str], rows: np.ndarray) -> np.ndarray:
    """bm25s' ``get_scores(tokens)[rows]`` without scoring the rest of the corpus (see ``scores``)."""
    out = np.zeros(len(rows), dtype=retriever.dtype)
    if not tokens or not len(rows):
        return out
    data, indices, indptr = retriever.scores["data"], retriever.scores["indices"], retriever.scores["indptr"]
    ids = np.asarray(retriever.get_tokens_ids(tokens), dtype=retriever.int_dtype)
    for token in ids.tolist():
        lo, hi = int(indptr[token]), int(indptr[token + 1])
        if hi == lo:
            continue
        posting = indices[lo:hi]
        at = np.minimum(np.searchsorted(posting, rows), hi - lo - 1)
        hit = posting[at] == rows
        out[hit] += data[lo + at[hit]]
    if retriever.nonoccurrence_array is not None:  # bm25l / bm25+: as get_scores_from_ids adds it
        out += retriever.nonoccurrence_array[ids].sum()
    return out
