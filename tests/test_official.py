"""Official-data check: recorded query/document counts against the published statistics; unverified unless
asserted; a contradicted assertion is a one-line error."""

from __future__ import annotations

import pytest

from lmeb.errors import LmebError
from lmeb.report.official import DIFFERS, OFFICIAL, UNVERIFIED, check_data, published_counts, require_official
from lmeb.results.dataset_result import DatasetResult, SubsetResult
from lmeb.tasks.registry import get_task


def _result(name: str, counts: dict[str, tuple[int, int]]) -> DatasetResult:
    task = get_task(name)
    subsets = {sub: SubsetResult(sub, {"ndcg_at_10": 0.5}, 0.5, 1.0,
                                 provenance={"queries": q, "documents": d, "data_fingerprint": f"fp-{sub}"})
               for sub, (q, d) in counts.items()}
    return DatasetResult("m", "wo_inst", task.name, task.memory_type, subsets, {"data_fingerprint": "f" * 64})


def test_published_counts_come_from_the_shipped_statistics() -> None:
    gorilla = published_counts("Gorilla")
    assert gorilla["gorilla_huggingface"] == {"queries": 500, "documents": 907}
    assert set(published_counts("EPBench")) == set(get_task("EPBench").subset_names)  # lmeb spelling


def test_matching_counts_are_unverified_unless_asserted() -> None:
    locomo = published_counts("LoCoMo")
    result = _result("LoCoMo", {s: (c["queries"], c["documents"]) for s, c in locomo.items()})
    check = check_data(result)
    assert check.status == UNVERIFIED and check.differences == () and check.fingerprint == "f" * 64
    assert check.subset_fingerprints["single_hop"] == "fp-single_hop"
    assert check_data(result, asserted_official=True).status == OFFICIAL
    require_official([check])  # nothing contradicts it


def test_a_rebuilt_superset_differs_and_refuses_the_assertion() -> None:
    result = _result("Gorilla", {"gorilla_tensor": (911, 94), "gorilla_pytorch": (43, 43)})
    check = check_data(result, asserted_official=True)
    assert check.status == DIFFERS
    assert check.differences[0].startswith("Gorilla/gorilla_tensor: 911 queries, the official release has ")
    with pytest.raises(LmebError, match=r"^--official-data, but the results were not computed from the official"):
        require_official([check])
