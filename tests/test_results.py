"""Results files: the round trip, and a sidecar left from an interrupted write is detected, not trusted."""

from __future__ import annotations

import json

import pytest

from lmeb.errors import LmebError
from lmeb.results.dataset_result import (
    PER_QUERY_SUFFIX,
    DatasetResult,
    SubsetResult,
    read_dataset_result,
    write_dataset_result,
)


def _result(value: float) -> DatasetResult:
    sub = SubsetResult("single_hop", {"ndcg_at_10": value}, value, 0.1,
                       per_query={"ndcg_at_10": [value, value]}, query_ids=["q1", "q2"])
    return DatasetResult("m", "wo_inst", "LoCoMo", "Dialogue", {"single_hop": sub})


def test_round_trip_with_per_query_values(tmp_path):
    path = write_dataset_result(tmp_path, _result(0.5), "LoCoMo", "rev")
    back = read_dataset_result(path, per_query=True)
    assert back.subsets["single_hop"].scores == {"ndcg_at_10": 0.5}
    assert back.subsets["single_hop"].query_ids == ["q1", "q2"]
    assert back.subsets["single_hop"].per_query == {"ndcg_at_10": [0.5, 0.5]}
    assert "per_query_sha256" not in back.provenance


def test_sidecar_from_an_interrupted_write_is_refused(tmp_path):
    path = write_dataset_result(tmp_path, _result(0.5), "LoCoMo", "rev")
    # A kill between the two renames of a later write: a new sidecar beside the old main file.
    side = path.with_suffix(PER_QUERY_SUFFIX)
    side.write_text(json.dumps({"single_hop": {"query_ids": ["q1", "q2"], "metrics": {"ndcg_at_10": [0.9, 0.9]}}}))
    assert read_dataset_result(path).subsets["single_hop"].scores == {"ndcg_at_10": 0.5}  # scores still readable
    with pytest.raises(LmebError, match=r"LoCoMo\.per_query\.json: does not match LoCoMo\.json"):
        read_dataset_result(path, per_query=True)
