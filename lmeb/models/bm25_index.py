"""Build a bm25s index in bounded memory: the same index ``bm25s.BM25.index`` builds, one chunk at a time.

``bm25s.BM25.index(bm25s.tokenize(texts))`` holds every document's token ids as Python lists and then
three arrays per (document, token) entry plus an int64 sort key and permutation: on a 1M-document
MemBench-sized corpus about 1.5 GB above the corpus text, and its per-document Python loops take minutes.
Here documents are tokenized as ``bm25s.tokenize`` does, a chunk of documents at a time (a document's
tokens never depend on the other documents; each distinct word is stemmed once), kept as int32 ids, and
the index entries are computed per
chunk with bm25s' own idf and term-frequency functions and written straight into their final place of
the CSC arrays (a counting sort by token, documents ascending within a token, as bm25s sorts them).

Every entry is computed by the same function on the same values and dtypes as in bm25s (the per-document
length ``l_d`` is passed as the Python int bm25s passes), so the scores are identical; only the token ids
(the vocabulary order, which bm25s takes from a set) may differ. tests/test_bm25.py compares both.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

CHUNK_DOCS = 5_000  # documents tokenized and scored per step (bounds the temporary arrays)


TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # bm25s.tokenize's default (scikit-learn's CountVectorizer)


def tokenize_ids(texts: Sequence[str], stopwords: Any, stemmer: Any, chunk: int = CHUNK_DOCS
                 ) -> tuple[list[np.ndarray], np.ndarray, dict[str, int]]:
    """(per chunk: int32 token ids of its documents back to back, tokens per document, token -> id).

    The tokens of ``bm25s.tokenize(texts, stopwords=stopwords, stemmer=stemmer)``: each text lower-cased,
    split by ``TOKEN_PATTERN``, stop words dropped, the rest stemmed (``stemmer.stemWords``); each
    distinct word is looked up once instead of once per occurrence. Ids are in order of first appearance.
    """
    from bm25s.tokenization import _infer_stopwords

    split = re.compile(TOKEN_PATTERN).findall
    stop = set(_infer_stopwords(stopwords))
    word_id: dict[str, int] = {}  # a lower-cased word -> its token id, or -1 for a stop word
    vocab: dict[str, int] = {}
    chunks: list[np.ndarray] = []
    lengths = np.empty(len(texts), dtype=np.int64)
    for lo in range(0, len(texts), chunk):
        words = [split(text.lower()) for text in texts[lo:lo + chunk]]
        new = [w for w in dict.fromkeys(itertools.chain.from_iterable(words)) if w not in word_id]
        kept = [w for w in new if w not in stop]
        stems = stemmer.stemWords(kept) if stemmer is not None else kept
        word_id.update(dict.fromkeys(new, -1))
        word_id.update((w, vocab.setdefault(stem, len(vocab))) for w, stem in zip(kept, stems, strict=True))
        flat = np.array(list(map(word_id.__getitem__, itertools.chain.from_iterable(words))), dtype=np.int64)
        counts = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        if stop:
            keep = flat >= 0
            doc = np.repeat(np.arange(len(words)), counts)
            counts = np.bincount(doc[keep], minlength=len(words)).astype(np.int64)
            flat = flat[keep]
        lengths[lo:lo + len(words)] = counts
        chunks.append(flat.astype(np.int32))
    return chunks, lengths, vocab


def _entries(ids: np.ndarray, lengths: np.ndarray, n_vocab: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(document offset in the chunk, token id, term frequency as float32) per distinct pair, by document."""
    docs = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    keys, tf = np.unique(docs * n_vocab + ids, return_counts=True)
    return (keys // n_vocab).astype(np.int64), (keys % n_vocab).astype(np.int64), tf.astype(np.float32)


def build_index(retriever: Any, texts: Sequence[str], stopwords: Any, stemmer: Any, chunk: int = CHUNK_DOCS) -> None:
    """Index ``texts`` into ``retriever`` (a fresh ``bm25s.BM25``) exactly as
    ``retriever.index(bm25s.tokenize(texts, stopwords=stopwords, stemmer=stemmer))`` does."""
    from bm25s import scoring

    chunks, lengths, vocab = tokenize_ids(texts, stopwords, stemmer, chunk)
    n_docs, n_vocab = len(lengths), len(vocab)
    avg_doc_len = lengths.mean() if n_docs else np.float64("nan")  # as bm25s: np.array(lengths).mean()
    doc_freqs = np.zeros(n_vocab, dtype=np.int64)
    for c, ids in enumerate(chunks):
        doc_freqs += np.bincount(_entries(ids, lengths[c * chunk:(c + 1) * chunk], n_vocab)[1], minlength=n_vocab)
    df = dict(enumerate(doc_freqs.tolist()))
    idf_fn = scoring._select_idf_scorer(retriever.idf_method)
    tfc_fn = scoring._select_tfc_scorer(retriever.method)
    k1, b, delta = retriever.k1, retriever.b, retriever.delta
    nonoccurrence = None
    if retriever.method in retriever.methods_requiring_nonoccurrence:
        nonoccurrence = scoring._build_nonoccurrence_array(
            doc_frequencies=df, n_docs=n_docs, compute_idf_fn=idf_fn, calculate_tfc_fn=tfc_fn, l_d=avg_doc_len,
            l_avg=avg_doc_len, k1=k1, b=b, delta=delta, dtype=retriever.dtype)
    idf = scoring._build_idf_array(doc_frequencies=df, n_docs=n_docs, compute_idf_fn=idf_fn, dtype=retriever.dtype)
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)
    np.cumsum(doc_freqs, out=indptr[1:])
    data = np.empty(int(indptr[-1]), dtype=retriever.dtype)
    indices = np.empty(int(indptr[-1]), dtype=retriever.int_dtype)
    heads = indptr[:-1].copy()  # the next free slot of each token's posting list
    for c, ids in enumerate(chunks):
        first = c * chunk
        doc_lens = lengths[first:first + chunk]
        docs, toks, tf = _entries(ids, doc_lens, n_vocab)
        values = np.empty(len(docs), dtype=retriever.dtype)
        by_len = np.argsort(doc_lens[docs], kind="stable")
        bounds = np.flatnonzero(np.diff(doc_lens[docs][by_len])) + 1
        for run in np.split(by_len, bounds):
            if not len(run):
                continue
            l_d = int(doc_lens[docs[run[0]]])  # bm25s passes len(token_ids), a Python int
            tfc = tfc_fn(tf_array=tf[run], l_d=l_d, l_avg=avg_doc_len, k1=k1, b=b, delta=delta)
            scores = idf[toks[run]] * tfc
            if nonoccurrence is not None:
                scores -= nonoccurrence[toks[run]]
            values[run] = scores
        order = np.argsort(toks, kind="stable")  # by token, documents ascending within a token
        sorted_toks = toks[order]
        rank = np.arange(len(order)) - np.searchsorted(sorted_toks, sorted_toks, side="left")
        slots = heads[sorted_toks] + rank
        data[slots] = values[order]
        indices[slots] = docs[order] + first
        heads += np.bincount(toks, minlength=n_vocab)
    retriever.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": n_docs}
    retriever.nonoccurrence_array = nonoccurrence
    vocab.setdefault("", n_vocab)  # bm25s' empty token (create_empty_token=True)
    retriever.vocab_dict = vocab
    retriever.unique_token_ids_set = set(vocab.values())
