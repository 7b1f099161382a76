"""``lmeb stats``: mteb's formulas on a hand-checked tree, and exact agreement with the published numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmeb.cli import main as cli
from lmeb.data.stats import compare_stats, dataset_stats, published_stats
from lmeb.tasks.registry import get_task


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_formulas_on_a_tiny_tree(tmp_path: Path) -> None:
    """NovelQA layout: one corpus shared by subsets, query-id scenes; two of its seven subsets written."""
    base = tmp_path / "Semantic/NovelQA"
    _jsonl(base / "corpus.jsonl", [
        {"id": "d1", "title": "T", "text": "abc"},  # "T abc": 5
        {"id": "d2", "text": " xy "},  # stripped: 2
        {"id": "d3", "title": "", "text": "xy"},  # 2, same text as d2
    ])  # fmt: skip
    _jsonl(base / "Character/queries.jsonl", [{"id": "q1", "text": "hello"}, {"id": "q2", "text": "hi"}])
    (base / "Character/qrels.tsv").write_text("q1\td1\t1\nq1\td2\t0\nq2\td9\t2\n")
    _jsonl(base / "Meaning/queries.jsonl", [{"id": "q3", "text": "hello"}])
    (base / "Meaning/qrels.tsv").write_text("q3\td1\t1\nq3\td3\t1\n")
    _jsonl(base / "candidates.jsonl", [
        {"scene_id": "q1", "candidate_doc_ids": ["d1", "d2"]},
        {"scene_id": "q3", "candidate_doc_ids": ["d1", "d2", "d3"]},
    ])  # fmt: skip
    stats = dataset_stats(get_task("NovelQA"), tmp_path, ["Character", "Meaning"])["test"]
    char = stats["hf_subset_descriptive_stats"]["Character"]
    assert char["num_samples"] == 5 and char["number_of_characters"] == 9 + 7
    assert char["documents_text_statistics"] == {
        "total_text_length": 9, "min_text_length": 2, "average_text_length": 3.0, "max_text_length": 5,
        "unique_texts": 2,
    }  # fmt: skip
    assert char["relevant_docs_statistics"] == {
        "num_relevant_docs": 2,  # score 0 rows do not count ...
        "min_relevant_docs_per_query": 1,
        "average_relevant_docs_per_query": 1.0,
        "max_relevant_docs_per_query": 1,
        "unique_relevant_docs": 3,  # ... but their ids do, and so do missing documents
    }
    # q2's scene has no candidates line: no top-ranked list, yet the average divides by both queries
    assert char["top_ranked_statistics"] == {
        "num_top_ranked": 2, "min_top_ranked_per_query": 2, "average_top_ranked_per_query": 1.0,
        "max_top_ranked_per_query": 2,
    }  # fmt: skip
    # the aggregate concatenates: the shared corpus counts twice in lengths, once in unique texts
    assert stats["documents_text_statistics"]["total_text_length"] == 18
    assert stats["documents_text_statistics"]["unique_texts"] == 2
    assert stats["queries_text_statistics"]["unique_texts"] == 2  # "hello" twice
    assert stats["relevant_docs_statistics"]["unique_relevant_docs"] == 5  # prefixed by subset: 3 + 2
    assert stats["relevant_docs_statistics"]["average_relevant_docs_per_query"] == 4 / 3
    assert stats["top_ranked_statistics"]["average_top_ranked_per_query"] == 5 / 3
    assert list(stats)[:3] == ["num_samples", "number_of_characters", "documents_text_statistics"]


def test_no_candidates_rule_gives_null_top_ranked(sample_data: Path) -> None:
    stats = dataset_stats(get_task("Gorilla"), sample_data)["test"]
    assert stats["top_ranked_statistics"] is None
    assert set(stats) == set(published_stats(get_task("Gorilla"))["test"])
    sub = stats["hf_subset_descriptive_stats"]["gorilla_tensor"]
    assert set(sub) == set(
        published_stats(get_task("Gorilla"))["test"]["hf_subset_descriptive_stats"]["gorilla_tensor"]
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("LoCoMo", None),  # all 5 subsets
        ("Proced_mem_bench", None),  # all 3
        ("KnowMeBench", [f"{s}/{q}" for s in ("flashback_intensive", "psychological_depth") for q in (
            "adversarial_abstention", "information_extraction", "mind-body_interaction", "mnestic_trigger_analysis",
            "temporal_reasoning")]),
    ],
)  # fmt: skip
def test_real_data_matches_published_exactly(real_data: Path, name: str, expected: list[str] | None) -> None:
    task = get_task(name)
    comparison = compare_stats(task, dataset_stats(task, real_data))
    assert sorted(comparison.matching) == sorted(expected or task.subset_names)
    if expected is None:
        assert comparison.dataset == []  # the dataset-level block matches too
    else:  # event_driven: the documents are approximations (see the data README), everything else exact
        for sub in set(task.subset_names) - set(expected):
            assert {d.key.split(".")[0] for d in comparison.subsets[sub]} == {
                "number_of_characters", "documents_text_statistics"}  # fmt: skip


def test_cli_compare_and_json(real_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["stats", "--data", str(real_data), "--tasks", "LoCoMo,Gorilla", "--compare"]) == 0
    out = capsys.readouterr().out
    assert "LoCoMo/single_hop: ==" in out and "Gorilla/gorilla_tensor: !=" in out
    assert "queries_text_statistics.unique_texts" in out
    assert "5/8 subsets match the published statistics" in out
    assert cli(["stats", "--data", str(real_data), "--tasks", "Proced_mem_bench/easy", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (
        data["Proced_mem_bench"]["test"]["hf_subset_descriptive_stats"]["easy"]
        == (published_stats(get_task("Proced_mem_bench"))["test"]["hf_subset_descriptive_stats"]["easy"])
    )
    assert cli(["stats", "--data", str(real_data), "--tasks", "EPBench"]) == 2
    assert "no data for EPBench (dataset folder missing)" in capsys.readouterr().err
