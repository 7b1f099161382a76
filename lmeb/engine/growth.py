"""Memory growth: which documents each query is ranked among (its *scope*), as the memory grows.

* ``pool`` (the default, what LMEB reports): each query among its scene's candidates
  (``lmeb.engine.retrieval.candidate_rows``); the whole subset corpus where the dataset has no candidates.
* ``xN`` (``--distractors N``): each query's pool plus ``N`` times its size of documents drawn, without
  replacement, from the pools of the *other* scenes of the subset's corpus (all of them when fewer are
  there). The draw is fixed by ``seed`` and the scene id (``numpy.random.default_rng([seed, scene
  digest])``), so a run is reproducible from the seed recorded in its provenance. A dataset without
  scenes has nothing to add: its pool already is the corpus.
* ``corpus``: every query among the whole corpus of the subset (what the official code ranks before it
  filters to the candidates).

A scope other than ``pool`` is part of the result's identity: its run key gets the scope and seed
(``scoped_run_key``) and its results go under the model name with a ``@scope`` suffix (``bm25@x16``,
``bm25@corpus``; ``scoped_name``), so a resume never mixes scopes and every table names the scope in
the model's label. ``pool`` leaves names and run keys exactly as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lmeb.digest import json_digest, text_digest
from lmeb.engine.retrieval import Rows, candidate_rows
from lmeb.errors import LmebError

if TYPE_CHECKING:
    from lmeb.data.reader import SubsetData

POOL, CORPUS = "pool", "corpus"
DEFAULT_SEED = 0
SCOPE_MARK = "@"


def distractor_scope(factor: int) -> str:
    """The scope name of ``factor`` times the pool in distractors: ``x4``."""
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
        raise LmebError(f"distractors must be whole numbers >= 1, got {factor!r}")
    return f"x{factor}"


def check_scope(scope: str) -> str:
    """``pool``, ``corpus`` or ``xN`` (N >= 1); a one-line error otherwise."""
    if scope in (POOL, CORPUS):
        return scope
    if scope.startswith("x") and scope[1:].isdigit() and int(scope[1:]) >= 1:
        return scope
    raise LmebError(f"unknown scope {scope!r} (choose pool, corpus or xN for N times the pool in distractors)")


def parse_distractors(text: str | None) -> list[int]:
    """``"4,16,64"`` -> [4, 16, 64]; a one-line error naming the bad item."""
    if not text:
        return []
    out = []
    for item in str(text).split(","):
        item = item.strip()
        if not item.isdigit() or int(item) < 1:
            raise LmebError(f"--distractors takes whole numbers >= 1 separated by commas, got {item!r}")
        out.append(int(item))
    return list(dict.fromkeys(out))


def scopes_of(scope: str, distractors: list[int] | tuple[int, ...] | None) -> list[str]:
    """The scopes one run evaluates: ``scope`` itself unless distractors are given (then one per factor)."""
    check_scope(scope)
    if distractors:
        if scope != POOL:
            raise LmebError("--distractors grow the pool: use them with --scope pool (the default)")
        return [distractor_scope(f) for f in distractors]
    return [scope]


def scoped_name(name: str, scope: str) -> str:
    """The results name of a run in ``scope``: ``bm25`` for pool, ``bm25@x16``, ``bm25@corpus``."""
    return name if scope == POOL else f"{name}{SCOPE_MARK}{scope}"


def split_scoped_name(name: str) -> tuple[str, str]:
    """(base model name, scope) of a results name (``scoped_name``'s inverse)."""
    base, mark, scope = name.rpartition(SCOPE_MARK)
    if mark and base:
        try:
            return base, check_scope(scope)
        except LmebError:
            pass
    return name, POOL


def scoped_run_key(run_key: str, scope: str, seed: int) -> str:
    """The run key of a scope: unchanged for ``pool`` (existing results stay current), else with scope+seed."""
    return run_key if scope == POOL else json_digest({"run_key": run_key, "scope": scope, "seed": seed})


def _scene_rng(seed: int, scene: str) -> np.random.Generator:
    return np.random.default_rng([seed, int.from_bytes(text_digest(scene)[:8], "little")])


def scope_rows(subset: SubsetData, scope: str = POOL, seed: int = DEFAULT_SEED) -> tuple[Rows, dict[str, Any]]:
    """Per query the corpus rows it is ranked among in ``scope`` (None = whole corpus), and what that is
    for provenance: scope, distractor factor and seed, mean documents per query in the pool and searched."""
    check_scope(scope)
    pool = candidate_rows(subset)
    n_docs = len(subset.corpus)
    rows: Rows
    if scope == CORPUS:
        rows = [None] * len(pool)
    elif scope == POOL or subset.scenes is None:
        rows = pool
    else:
        rows = _with_distractors(subset, pool, int(scope[1:]), seed)
    info: dict[str, Any] = {"scope": scope, "seed": seed if scope.startswith("x") else None,
                            "distractors": int(scope[1:]) if scope.startswith("x") else None,
                            "pool_docs": _mean_size(pool, n_docs), "searched_docs": _mean_size(rows, n_docs)}
    return rows, info


def _mean_size(rows: Rows, n_docs: int) -> float:
    sizes = [n_docs if r is None else r.shape[0] for r in rows]
    return round(sum(sizes) / len(sizes), 2) if sizes else 0.0


def _with_distractors(subset: SubsetData, pool: Rows, factor: int, seed: int) -> Rows:
    """Each scene's pool plus ``factor`` x its size in rows drawn from the other scenes' pools."""
    row = subset.corpus.row
    every = sorted({row[d] for cands in (subset.scenes or {}).values() for d in cands if d in row})
    all_rows = np.asarray(every, dtype=np.int64)
    by_scene: dict[int, np.ndarray | None] = {}
    out: Rows = []
    for qid, rows in zip(subset.query_ids, pool, strict=True):
        if rows is None:  # no candidates line: already the whole corpus
            out.append(None)
            continue
        if id(rows) not in by_scene:
            others = np.setdiff1d(all_rows, rows, assume_unique=False)
            want = min(factor * rows.shape[0], others.shape[0])
            drawn = np.sort(_scene_rng(seed, subset.task.scene_of(qid)).choice(others, size=want, replace=False))
            grown = np.concatenate([rows, drawn]).astype(np.int64)
            grown.flags.writeable = False
            by_scene[id(rows)] = grown
        out.append(by_scene[id(rows)])
    return out
