"""Evidence distance: the main score by how far back in the memory the relevant documents lie.

Only where the data gives an order. A dataset qualifies when each scene's candidate list is in
conversation/time order and that order is checked in the data, not assumed (``ORDERED``):

* LoCoMo: each conversation's candidates are its turns ``<conv>_D<session>:<turn>``, sessions dated and
  listed in (session, turn) order; checked per scene, a scene out of order is an error.

Not: datasets without scenes (KnowMeBench's corpora are one memory per scenario, partly undated, and
``flashback_intensive`` is told out of order; Gorilla's tool documents and Proced_mem_bench's
procedures have no time at all). The position of a document is its place in its scene's list, as a
fraction of the scene: distance 0 = the last turn (most recent), 1 = the first. A query's distance is
the mean over its relevant documents; queries fall in quartiles of it (most recent ... most distant).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lmeb.errors import LmebError
from lmeb.results.dataset_result import DatasetResult

QUARTILES = ("most recent", "recent", "distant", "most distant")
_TURN = re.compile(r"_D(\d+):(\d+)$")


def _turn_order(ids: Sequence[str]) -> bool:
    keys = []
    for doc in ids:
        match = _TURN.search(doc)
        if match is None:
            return False
        keys.append((int(match.group(1)), int(match.group(2))))
    return keys == sorted(keys)


ORDERED: dict[str, Callable[[Sequence[str]], bool]] = {"LoCoMo": _turn_order}


def evidence_distance(result: DatasetResult, data: str | Path | None = None) -> Any:
    """Per quartile of evidence distance: mean main score (percent) and queries, over every subset of
    ``result`` (a DataFrame: model, dataset, quartile, ndcg_at_10, queries)."""
    import pandas as pd

    from lmeb.data.mteb_format import open_reader
    from lmeb.data.reader import data_root
    from lmeb.engine.metrics import MAIN_SCORE
    from lmeb.inspect.queries import main_scores
    from lmeb.tasks.registry import get_task

    check = ORDERED.get(result.task_name)
    if check is None:
        raise LmebError(f"{result.task_name} has no memory order to measure evidence distance against "
                        f"(datasets with one: {', '.join(ORDERED)}; docs/growth.md says why)")
    reader = open_reader(get_task(result.task_name), data_root(data))  # as the run read it
    rows = []
    for name, sub in result.subsets.items():
        subset = reader.load(name)
        scenes: dict[str, dict[str, int] | None] = {}  # scene -> each candidate's position (checked once)
        for qid, score in main_scores(result, sub).items():
            scene = subset.task.scene_of(qid)
            if scene not in scenes:
                cands = list(dict.fromkeys(subset.candidates(qid) or []))
                if len(cands) >= 2 and not check(cands):
                    raise LmebError(f"{result.task_name}/{name}: the scene of query {qid} is not in conversation "
                                    "order")
                scenes[scene] = {d: i for i, d in enumerate(cands)} if len(cands) >= 2 else None
            pos = scenes[scene]
            if pos is None:
                continue
            relevant = [d for d, g in subset.qrels.get(qid, {}).items() if g > 0 and d in pos]
            if not relevant:
                continue
            distance = sum(1 - pos[d] / (len(pos) - 1) for d in relevant) / len(relevant)
            rows.append((QUARTILES[min(3, int(distance * 4))], score))
    frame = pd.DataFrame(rows, columns=["quartile", MAIN_SCORE])
    out = frame.groupby("quartile").agg(**{MAIN_SCORE: (MAIN_SCORE, "mean"), "queries": (MAIN_SCORE, "size")})
    out = out.reindex(list(QUARTILES)).reset_index()
    out[MAIN_SCORE] = 100 * out[MAIN_SCORE]
    out["queries"] = out["queries"].fillna(0).astype(int)
    return out.assign(model=result.model, dataset=result.task_name)[["model", "dataset", "quartile", MAIN_SCORE,
                                                                     "queries"]]
