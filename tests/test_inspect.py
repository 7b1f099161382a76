"""lmeb inspect and the rankings sidecar: the worst queries, --versus, damaged sidecars, HTML, Results.inspect."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import lmeb
from lmeb.cli import main as cli
from lmeb.errors import LmebError
from lmeb.inspect.queries import Hit, Inspection, ModelView, QueryView
from lmeb.inspect.render import render
from lmeb.models.bm25 import BM25Searcher
from lmeb.reporter import Reporter
from lmeb.results.rankings import decode, encode, read_rankings

SUBSET = "LoCoMo/temporal_reasoning"


def _per_query(path: Path, subset: str) -> dict[str, float]:
    block = json.loads(path.with_suffix(".per_query.json").read_text())[subset]
    return dict(zip(block["query_ids"], block["metrics"]["ndcg_at_10"], strict=True))


def _trec_top(path: Path, k: int) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        qid, _, doc, rank, _, _ = line.split()
        if int(rank) <= k:
            out.setdefault(qid, []).append(doc)
    return out


@pytest.fixture(scope="module")
def real_runs(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BM25 (with TREC runs) and BM25 with other parameters on one LoCoMo subset."""
    out = tmp_path_factory.mktemp("inspect")
    assert cli(["run", "--model", "bm25", "--tasks", SUBSET, "--data", str(real_data), "--output", str(out),
                "--no-cache", "--save-runs", "--no-progress"]) == 0
    lmeb.evaluate(BM25Searcher(k1=0.6, b=0.2, name="bm25-b02"), tasks=SUBSET, data=real_data, output=out,
                  cache_dir=None, name="bm25-b02", revision="1", reporter=Reporter(lambda m: None))
    return out


def test_worst_lists_the_lowest_queries_with_texts_and_rankings(real_runs: Path, real_data: Path, capsys) -> None:
    main = real_runs / "bm25" / "wo_inst" / "LoCoMo.json"
    assert cli(["inspect", str(real_runs), "--model", "bm25", "--tasks", SUBSET, "--worst", "5", "--format", "json",
                "--data", str(real_data)]) == 0
    view = json.loads(capsys.readouterr().out)
    scores = _per_query(main, "temporal_reasoning")
    expected = sorted(scores, key=lambda q: (scores[q], q))[:5]
    assert [q["query_id"] for q in view["queries"]] == expected
    texts = {}
    for line in (real_data / "Dialogue/LoCoMo/temporal_reasoning/queries.jsonl").read_text().splitlines():
        row = json.loads(line)
        texts[row["id"]] = row["text"]
    trec = _trec_top(main.with_suffix(".runs") / "temporal_reasoning.trec", 10)
    for q in view["queries"]:
        assert q["text"] == texts[q["query_id"]]
        (v,) = q["views"]
        assert v["metrics"]["ndcg_at_10"] == scores[q["query_id"]]
        assert [h["doc_id"] for h in v["top"]] == trec[q["query_id"]]
        assert [h["rank"] for h in v["top"]] == list(range(1, 11))
        assert v["relevant"] and all(h["grade"] > 0 for h in v["relevant"])
        for h in v["relevant"]:  # the rank shown is the document's place in the run (None below the top 100)
            ranked = _trec_top(main.with_suffix(".runs") / "temporal_reasoning.trec", 100)[q["query_id"]]
            assert h["rank"] == (ranked.index(h["doc_id"]) + 1 if h["doc_id"] in ranked else None)
    assert cli(["inspect", str(real_runs), "--model", "bm25", "--tasks", SUBSET, "--worst", "5",
                "--data", str(real_data)]) == 0
    text = capsys.readouterr().out
    assert all(f"query {q}: {texts[q]}" in text for q in expected)


def test_versus_picks_the_largest_differences(real_runs: Path, real_data: Path) -> None:
    res = lmeb.load_results(real_runs, per_query=True)
    frame = res.inspect(SUBSET, "bm25", versus="bm25-b02", worst=4, data=real_data)
    a = _per_query(real_runs / "bm25" / "wo_inst" / "LoCoMo.json", "temporal_reasoning")
    b = _per_query(real_runs / "bm25-b02" / "wo_inst" / "LoCoMo.json", "temporal_reasoning")
    expected = sorted(a, key=lambda q: (-abs(a[q] - b[q]), q))[:4]
    assert list(dict.fromkeys(frame["query_id"])) == expected
    assert abs(a[expected[0]] - b[expected[0]]) > 0
    assert set(frame["model"]) == {"bm25", "bm25-b02"}
    first = frame[(frame["query_id"] == expected[0]) & (frame["role"] == "retrieved")]
    assert len(first[first["model"] == "bm25"]) == 10 and len(first[first["model"] == "bm25-b02"]) == 10


def test_rankings_sidecar_size_against_the_results_folder(real_runs: Path) -> None:
    folder = real_runs / "bm25" / "wo_inst"
    sidecar = sum(p.stat().st_size for p in (folder / "LoCoMo.rankings").iterdir())
    results = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    trec = sum(p.stat().st_size for p in (folder / "LoCoMo.runs").iterdir())
    assert sidecar < results and sidecar * 20 < trec  # far smaller than the TREC runs it replaces for inspect


def test_rankings_round_trip_keeps_order_and_float32_scores() -> None:
    run = {"q1": {"a": 0.5, "b": 0.5, "c": 0.25}, "q2": {}, "q3": {"c": 1.0}}
    got = decode(encode(run, depth=2))
    assert got == {"q1": [("b", 0.5), ("a", 0.5)], "q2": [], "q3": [("c", 1.0)]}  # tie: larger id first


@pytest.fixture(scope="module")
def sample_run(sample_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("inspect-sample")
    assert cli(["run", "--model", "bm25", "--tasks", "LoCoMo/single_hop", "--data", str(sample_data), "--output",
                str(out), "--no-cache", "--no-progress"]) == 0
    return out


def test_damaged_or_missing_rankings_are_one_note(sample_run: Path, sample_data: Path, tmp_path: Path, capsys) -> None:
    import shutil

    copy = tmp_path / "r"
    shutil.copytree(sample_run, copy)
    sidecar = copy / "bm25" / "wo_inst" / "LoCoMo.rankings" / "single_hop.npz"
    sidecar.write_bytes(sidecar.read_bytes()[:-10])
    args = ["inspect", str(copy), "--model", "bm25", "--tasks", "LoCoMo/single_hop", "--worst", "2",
            "--data", str(sample_data)]
    assert cli(args) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "does not match its results file" in notes[0] and "single_hop.npz" in notes[0]
    assert "ndcg_at_10" in out  # the metric values are still there
    sidecar.unlink()
    assert cli(args) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "is missing" in notes[0]


def test_results_inspect_in_memory(sample_data: Path, tmp_path: Path) -> None:
    res = lmeb.evaluate("bm25", tasks="LoCoMo/single_hop", data=sample_data, cache_dir=None,
                        reporter=Reporter(lambda m: None))
    frame = res.inspect("LoCoMo/single_hop", worst=3, k=5, data=sample_data)
    sub = res[0].subsets["single_hop"]
    scores = dict(zip(sub.query_ids, sub.per_query["ndcg_at_10"], strict=True))
    assert list(dict.fromkeys(frame["query_id"])) == sorted(scores, key=lambda q: (scores[q], q))[:3]
    top = frame[frame["role"] == "retrieved"]
    assert top.groupby("query_id")["rank"].max().max() <= 5 and np.all(top["score"].notna())
    assert sub.rankings is not None  # read before the scratch folder went away
    res.save(tmp_path)  # and written with the results
    again = lmeb.load_results(tmp_path, per_query=True).inspect("LoCoMo/single_hop", worst=3, k=5, data=sample_data)
    assert again.equals(frame)


def test_bad_selection_is_one_line(sample_run: Path, sample_data: Path, capsys) -> None:
    assert cli(["inspect", str(sample_run), "--model", "bm25", "--tasks", "LoCoMo/single_hop", "--query", "nope",
                "--data", str(sample_data)]) == 2
    assert "1 query id not in the per-query file: nope" in capsys.readouterr().err
    assert cli(["inspect", str(sample_run), "--model", "bm25", "--tasks", "LoCoMo/nope",
                "--data", str(sample_data)]) == 2
    assert "no subset 'nope'" in capsys.readouterr().err


EVIL = "</td></table><script>window.PWNED=1</script><img src=x onerror=\"window.PWNED=2\">"


def _evil_view() -> Inspection:
    hit = Hit("d&1", 1, 0.5, 1, EVIL)
    view = ModelView(EVIL, {"ndcg_at_10": 0.25}, [hit], [hit])
    return Inspection("LoCoMo", "single_hop", "wo_inst", [EVIL], None, 10, "test", [QueryView("q<1>", EVIL, [view])])


def test_html_is_escaped() -> None:
    page = render(_evil_view(), "html")
    assert "<script>" not in page and "onerror=\"" not in page and "&lt;/td&gt;" in page


@pytest.mark.browser
@pytest.mark.slow
def test_html_page_in_headless_chromium(browser, tmp_path: Path) -> None:
    page = tmp_path / "inspect.html"
    page.write_text(render(_evil_view(), "html"), encoding="utf-8")
    browser.get(page.as_uri())
    assert browser.execute_script("return window.PWNED") is None
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    text = browser.find_element("css selector", "section.query p.text").text
    assert text == EVIL
    assert browser.find_element("css selector", "tr.rel td:nth-child(3)").text == "d&1"


def test_read_rankings_without_record(tmp_path: Path) -> None:
    assert read_rankings(tmp_path / "X.json", {})[0] is None


def test_evidence_distance_on_locomo_only(real_runs: Path, real_data: Path) -> None:
    from lmeb.inspect.evidence import QUARTILES, evidence_distance
    from lmeb.inspect.queries import find_result

    results = lmeb.load_results(real_runs, per_query=True)
    frame = evidence_distance(find_result(results, "bm25", "LoCoMo", None), real_data)
    assert frame["quartile"].tolist() == list(QUARTILES)
    scores = _per_query(real_runs / "bm25" / "wo_inst" / "LoCoMo.json", "temporal_reasoning")
    assert frame["queries"].sum() == len(scores)  # every query of the subset has a judged turn in its scene
    total = (frame["ndcg_at_10"] * frame["queries"]).sum() / frame["queries"].sum()
    assert total == pytest.approx(100 * np.mean(list(scores.values())))
    with pytest.raises(LmebError, match="no memory order"):
        evidence_distance(type(results[0])("m", "wo_inst", "Gorilla", "Procedural", {}), real_data)


def test_a_full_disk_on_the_rankings_is_one_line(sample_data: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    import errno

    import lmeb.results.rankings as rankings

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rankings.np, "savez_compressed", full)
    assert cli(["run", "--model", "bm25", "--tasks", "LoCoMo/single_hop", "--data", str(sample_data), "--output",
                str(tmp_path), "--no-cache", "--no-progress"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "single_hop.npz: cannot write the rankings sidecar (No space left on device)" in line
    assert not list(tmp_path.rglob("*.npz")) and not list(tmp_path.rglob("*.tmp"))
