"""Exact retrieval over plain arrays: candidate restriction, top-k with THE tie rule, runs, TREC files.

What the official harness and mteb 2.26.24 do, and what this module reproduces:

* Candidates. The official LMEB harness (``SubsetRetrieval._evaluate_subset``) ranks the WHOLE corpus
  (``top_k = len(corpus)``) and then keeps, per query, only the documents of its scene's candidate list;
  a query whose scene has no candidates line keeps the unfiltered ranking. mteb 2.26.24 ships the same
  lists as ``top_ranked`` and scores each query against its candidates only. Both give the candidates'
  ranking; we score each query against its candidate rows only (``SubsetData.candidates`` encodes the
  scene rule; ``None`` = whole corpus). Candidate ids missing from the corpus cannot be ranked and are
  dropped; duplicate candidate ids count once (the harness filters with a ``set``).
* Tie rule. Every ranking is: score descending, then document id descending (string order), which is
  how trec_eval/pytrec_eval order tied scores and how mteb's own metrics (mrr, recall_cap) sort since
  mteb #5092. Runs are dicts whose insertion order is this rank order (``lmeb.ordering`` implements it, below
  the engine, so a Searcher such as BM25 ranks through the same code).
* Cut-off. Metrics only look at ranks <= max(k_values) = 1000 of that total order, so keeping the first
  ``k`` (default 1000) documents of it is lossless: "rank the full corpus, then filter to candidates"
  and "rank the candidates, keep the top k" give identical metrics at every reported cut-off <= k.
  (mteb's nAUC confidence scores read every returned score; we do not report them, see lmeb.engine.metrics.)
* ignore_identical_ids is False for every LMEB task in mteb 2.26.24 and in the official harness
  (``AbsTaskRetrieval`` default, never overridden): a document whose id equals the query id (KnowMeBench
  query "1" and event "1") is ranked and scored like any other. Nothing here drops it.
* Similarity. mteb's ``cos_sim``: both sides L2-normalised in float32 (``x / max(||x||, 1e-12)``, as
  ``torch.nn.functional.normalize``), then a float32 matrix product; ``dot`` is the plain float32 product.
  Scores enter the run as Python floats (exact float32 values), like mteb's ``.tolist()``. A float32
  product's last bit depends on the BLAS kernel and matrix shape (numpy here; torch on CPU/GPU in mteb),
  so runs are bit-identical for the same inputs and grouping, and elsewhere differ only for near-ties
  within ~1e-7, below the 5 digits mteb reports.
* Whole-corpus queries are scored one document chunk at a time (each chunk normalised once, merged into
  a running top k under the same total order), so a large corpus is never copied whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lmeb.errors import LmebError
from lmeb.files import atomic_write_text
from lmeb.ordering import DEFAULT_K, DocIndex, Ranking, ranking, top_k

if TYPE_CHECKING:
    from lmeb.data.reader import SubsetData

Run = dict[str, dict[str, float]]  # query id -> {doc id: score}; insertion order = rank order
Rows = list[np.ndarray | None]  # per query: corpus rows of its candidates, None = the whole corpus

_EPS = 1e-12  # torch.nn.functional.normalize's eps
_MAX_BLOCK = 1 << 25  # similarity-matrix cells computed at once (128 MiB of float32)
_DOC_CHUNK = 1 << 16  # whole-corpus search: documents normalised and scored per step (bounded memory)


def candidate_rows(subset: SubsetData) -> Rows:
    """Per query (``subset.query_ids`` order): int64 corpus rows of its candidates, or None = whole corpus.

    Rows keep the candidates file's order; ids missing from the corpus are dropped (they can never be
    retrieved) and a repeated id counts once. The queries of one scene share one read-only array
    (``dense_search`` groups them into one matmul).
    """
    if subset.scenes is None:
        return [None] * len(subset.query_ids)
    row = subset.corpus.row
    by_scene: dict[str, np.ndarray | None] = {}
    out: Rows = []
    for qid in subset.query_ids:
        scene = subset.task.scene_of(qid)
        if scene not in by_scene:
            cands = subset.scenes.get(scene)
            rows = None
            if cands is not None:
                rows = np.asarray([row[d] for d in dict.fromkeys(cands) if d in row], dtype=np.int64)
                rows.flags.writeable = False
            by_scene[scene] = rows
        out.append(by_scene[scene])
    return out


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float32))
    return x / np.maximum(norms, np.float32(_EPS))[:, None]


def _as_matrix(x: np.ndarray, name: str, rows: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != rows:
        raise ValueError(f"{name} must have shape ({rows}, dim), got {x.shape}")
    return x


class NonFiniteScores(LmebError):
    """NaN or inf similarities (the strategy names the model)."""


def _check_similarities(sims: np.ndarray) -> None:
    """Finite vectors can still overflow float32 in a dot product (x1e30): never rank NaN or inf."""
    if not np.isfinite(sims).all():
        raise NonFiniteScores(f"non-finite similarity scores ({int((~np.isfinite(sims)).sum())} NaN/inf): the "
                        "embeddings are too large for float32 dot products (normalise them or use cosine)")


def group_queries(rows: Rows) -> list[tuple[np.ndarray | None, list[int]]]:
    """Query indices grouped by the candidate array they share (None = whole corpus)."""
    groups: dict[int, tuple[np.ndarray | None, list[int]]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(id(r), (r, []))[1].append(i)
    return list(groups.values())


def dense_search(query_emb: np.ndarray, doc_emb: np.ndarray, subset: SubsetData, similarity: str = "cosine",
                 k: int = DEFAULT_K, rows: Rows | None = None) -> Run:
    """Exact search: each query scored against only its candidate rows, batched float32 matmuls.

    ``query_emb`` rows align with ``subset.query_ids``, ``doc_emb`` rows with ``subset.corpus.ids``.
    Returns every query (an empty dict when it has no candidate in the corpus), top ``k`` in rank order.
    """
    if similarity not in ("cosine", "dot"):
        raise LmebError(f"unknown similarity {similarity!r} (expected 'cosine' or 'dot')")
    q = _as_matrix(query_emb, "query embeddings", len(subset.query_ids))
    d = _as_matrix(doc_emb, "document embeddings", len(subset.corpus.ids))
    if not len(q) or not len(d):  # no queries or no documents: encoders give (0, 0) for no texts
        return {qid: {} for qid in subset.query_ids}
    if q.shape[1] != d.shape[1]:
        raise LmebError(f"query and document embeddings differ in size ({q.shape[1]} vs {d.shape[1]})")
    cosine = similarity == "cosine"
    if cosine:
        q = _normalize(q)
    rows = candidate_rows(subset) if rows is None else rows
    if len(rows) != len(subset.query_ids):
        raise ValueError(f"got candidate rows for {len(rows)} queries, expected {len(subset.query_ids)}")
    ids = DocIndex.of(subset.corpus.ids)
    results: list[Ranking | None] = [None] * len(rows)
    for cand, members in group_queries(rows):
        if cand is None:
            for qi, res in zip(members, _whole_corpus(q[members], d, ids, k, cosine), strict=True):
                results[qi] = res
            continue
        docs = _normalize(d[cand]) if cosine else d[cand]  # the gather copies anyway: normalise the copy
        step = max(1, _MAX_BLOCK // max(1, docs.shape[0]))
        for start in range(0, len(members), step):
            batch = members[start:start + step]
            sims = q[batch] @ docs.T
            _check_similarities(sims)
            for j, qi in enumerate(batch):
                results[qi] = top_k(sims[j], cand, ids, k)
    return {qid: res or {} for qid, res in zip(subset.query_ids, results, strict=True)}


def _whole_corpus(q: np.ndarray, d: np.ndarray, ids: DocIndex, k: int, cosine: bool) -> list[Ranking]:
    """Top ``k`` of the whole corpus for each row of ``q``: ``lmeb.engine.topk``'s exact streaming top-k (blocks
    of documents against all queries, a running top k per query, never a queries x corpus matrix)."""
    from lmeb.engine.topk import stream_top_k

    rows, scores = stream_top_k(q, d, ids.ranks, k, _normalize if cosine else None, _DOC_CHUNK, _MAX_BLOCK,
                                check=_check_similarities)
    return [dict(zip(ids.names[r].tolist(), s.tolist(), strict=True)) for r, s in zip(rows, scores, strict=True)]


def search_subset(searcher: Any, subset: SubsetData, k: int = DEFAULT_K, instruction: str | None = None,
                  rows: Rows | None = None) -> Run:
    """A ``Searcher``'s run of one subset: its corpus and queries in, one ranking per query out."""
    rows = candidate_rows(subset) if rows is None else rows
    rankings = searcher.search(subset.corpus.ids, subset.corpus.texts, subset.query_texts, k=k,
                               instruction=instruction, candidates=rows)
    from lmeb.models.checks import check_rankings  # lists, None, int ids, string or NaN scores: one line

    rankings = check_rankings(rankings, len(subset.query_ids), str(getattr(searcher, "name", type(searcher).__name__)))
    return dict(zip(subset.query_ids, rankings, strict=True))


def write_trec(run: Run, path: Path, tag: str) -> None:
    """Write ``run`` as a TREC run file (``qid Q0 docid rank score tag``, rank from 1), atomically."""
    if not tag or any(c.isspace() for c in tag):
        raise LmebError(f"TREC run tag must be one word, got {tag!r}")
    lines = []
    for qid, docs in run.items():
        if not qid or any(c.isspace() for c in qid):
            raise LmebError(f"query id {qid!r} contains whitespace: cannot write a TREC run file")
        for rank, (doc_id, score) in enumerate(ranking(docs), start=1):
            if not doc_id or any(c.isspace() for c in doc_id):
                raise LmebError(f"document id {doc_id!r} contains whitespace: cannot write a TREC run file")
            lines.append(f"{qid} Q0 {doc_id} {rank} {float(score)!r} {tag}\n")
    atomic_write_text(Path(path), "".join(lines))
