"""What a result is (lmeb.results.identity): rows never mix data sources or task scopes; synthetic results are marked
everywhere and never bold, never exported as real; a missing candidates file is a different task; a results
file with two entries for one subset is an error; compare names what it leaves out (issue 18, cases 1, 4-6)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

from lmeb.cli import main as cli
from lmeb.errors import LmebError, LmebWarning
from lmeb.report.aggregate import aggregate, as_results, scores_frame
from lmeb.report.render import render
from lmeb.report.views import build_table
from lmeb.results.dataset_result import read_dataset_result
from lmeb.results.identity import LOCAL, NO_CANDIDATES, SYNTHETIC, data_source, source_label, split_by_source
from lmeb.tasks.registry import all_tasks

REAL = ["KnowMeBench", "LoCoMo", "Proced_mem_bench", "Gorilla"]  # the datasets `make run` on real data replaced


def _synthetic(task, i, name):
    return {"ndcg_at_10": 0.80, "R_cap_at_10": 0.85}  # the sample is easy: high scores that say nothing


def _real(task, i, name):
    return {"ndcg_at_10": 0.30, "R_cap_at_10": 0.35}


@pytest.fixture
def mixed(tmp_path: Path, write_results) -> Path:
    """Case 1: bm25 on the synthetic sample (22 datasets), then 4 of its files replaced by real-data results;
    a second model, all real, for best-value marks."""
    root = tmp_path / "results"
    write_results(root, "bm25", scores=_synthetic, provenance={"synthetic": True},
                  per_query=lambda t, s: {f"synthetic-q{j}": 0.8 for j in range(3)})
    write_results(root, "bm25", datasets=REAL, scores=_real, provenance={"synthetic": False},
                  per_query=lambda t, s: {f"q{j}": 0.3 for j in range(3)})
    write_results(root, "real-model", datasets=REAL, scores=lambda t, i, s: {"ndcg_at_10": 0.40, "R_cap_at_10": 0.45},
                  per_query=lambda t, s: {f"q{j}": 0.4 for j in range(3)})
    return root


def test_a_folder_with_two_data_sources_is_two_incomplete_rows(mixed: Path, capsys) -> None:
    results = as_results(mixed)
    assert {r.model for r in results} == {"bm25 [synthetic]", "bm25 [local]", "real-model"}
    assert split_by_source(results) == results  # idempotent: every consumer may apply it again
    agg = aggregate(scores_frame(results))
    means = agg[agg["level"] == "mean_dataset"].set_index("model")
    # before: one complete bm25 row, Mean (Dataset) averaged over 4 real and 18 synthetic datasets
    assert means.loc["bm25 [synthetic]", ["n", "total", "complete"]].tolist() == [18, 22, False]
    assert means.loc["bm25 [local]", ["n", "total", "complete"]].tolist() == [4, 22, False]
    local = agg[(agg["model"] == "bm25 [local]") & (agg["level"] == "dataset")]
    assert sorted(local["group"]) == sorted(REAL) and (local["value"].round(6) == 0.30).all()

    assert cli(["table", str(mixed), "--view", "datasets"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("bm25")}
    assert set(rows) == {"[synthetic]", "[local]"}
    assert "wo_inst§" in rows["[synthetic]"] and "§" not in rows["[local]"]
    assert rows["[synthetic]"].split()[-1] == "18/22" and rows["[local]"].split()[-1] == "4/22"
    assert "§ synthetic data" in out


def test_synthetic_rows_never_take_best_marks(mixed: Path) -> None:
    table = build_table(mixed, view="datasets")
    marks = table.best_marks()
    assert marks and not any(labels[0] == "bm25 [synthetic]" for labels, _ in marks)
    gorilla = next(c for c in table.columns if c[1] == "Gorilla")
    assert marks[(("real-model", "wo_inst", "run"), gorilla)] == 1  # 40.00 beats bm25's real 30.00
    md = render(table, "md")
    synthetic_line = next(line for line in md.splitlines() if "bm25 [synthetic]" in line)
    assert "**" not in synthetic_line  # 80.00 would have been bold over every real row


def test_diff_marks_synthetic_in_text_and_json(mixed: Path, capsys) -> None:
    assert cli(["diff", "bm25 [synthetic]", "bge-m3", str(mixed)]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert head.startswith("§ bm25 [synthetic]") and "synthetic data (lmeb sample), not LMEB" in head
    assert cli(["diff", "bm25 [synthetic]", "bge-m3", str(mixed), "--format", "json"]) == 0
    cells = json.loads(capsys.readouterr().out)
    assert cells and {c["data_source"] for c in cells} == {SYNTHETIC}
    assert cli(["diff", "bm25", "bge-m3", str(mixed)]) == 2  # the plain name is now two runs
    assert "did you mean bm25 [local], bm25 [synthetic]?" in capsys.readouterr().err


def test_export_refuses_synthetic_unless_allowed(mixed: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "mteb"
    assert cli(["export-mteb", str(mixed), str(out), "--allow-incomplete"]) == 2
    err = capsys.readouterr().err
    assert "synthetic data (lmeb's sample, not LMEB): bm25 (wo_inst) ConvoMem" in err and "--allow-synthetic" in err
    assert not out.exists()
    assert cli(["export-mteb", str(mixed), str(out), "--allow-incomplete", "--allow-synthetic"]) == 0
    files = [json.loads(p.read_text()) for p in (out / "bm25").rglob("*.json") if p.name != "model_meta.json"]
    synthetic = [f for f in files if f["lmeb_data"]["status"] == SYNTHETIC]  # not "differs": the sample is no rebuild
    assert len(files) == 22 and len(synthetic) == 18
    assert all(f["dataset_revision"].startswith("lmeb-synthetic-data-") for f in synthetic)


def test_compare_names_what_it_leaves_out(mixed: Path, write_results) -> None:
    from lmeb.compare.paired import compare
    from lmeb.results.dataset_result import read_results

    # "other": no Gorilla at all, and LoCoMo with other query ids (another version of its queries)
    write_results(mixed, "other", datasets=REAL[:3], scores=_real,
                  per_query=lambda t, s: {f"{'x' if t.name == 'LoCoMo' else 'q'}{j}": 0.2 for j in range(3)})
    results = read_results([mixed], per_query=True)
    with pytest.warns(LmebWarning) as caught:
        c = compare(results, "bm25 [local]", "other", resamples=50)
    message = " ".join(str(w.message) for w in caught)
    assert "left out of the comparison: Gorilla (only bm25 [local] has results for it)" in message
    assert "LoCoMo/adversarial (no query id in common (the two runs used different queries))" in message
    assert set(c.subsets["dataset"]) == {"KnowMeBench", "Proced_mem_bench"}
    from dataclasses import replace

    from lmeb.compare.table import format_comparison

    assert (c.source_a, c.source_b) == (LOCAL, LOCAL) and "data: A local, B local" in format_comparison(c)
    text = format_comparison(replace(c, source_b=SYNTHETIC))
    assert "§ data: A local, B synthetic (synthetic: lmeb's sample, not LMEB" in text
    assert json.loads(format_comparison(c, "json"))["data_source_a"] == LOCAL


def test_efficiency_view_and_leaderboard_rows_carry_the_source(mixed: Path) -> None:
    from lmeb.leaderboard.site import _run_entries

    table = build_table(mixed, view="efficiency")
    marks = {r.labels[0]: r.marks for r in table.rows}
    assert marks["bm25 [synthetic]"] == "§" and marks["bm25 [local]"] == ""
    assert any(note.startswith("§ synthetic data") for note in table.footnotes)
    rows = {r["model"]: r for r in _run_entries(as_results(mixed))}
    assert rows["bm25 [synthetic]"]["data_source"] == [SYNTHETIC] and rows["bm25 [synthetic]"].get("synthetic")
    assert rows["bm25 [local]"]["data_source"] == [LOCAL] and not rows["bm25 [local]"].get("synthetic")


def test_a_results_file_with_two_entries_for_one_subset_is_an_error(tmp_path: Path, write_results, capsys) -> None:
    root = tmp_path / "results"
    path = write_results(root, "m", datasets=["ReMe"], scores=lambda t, i, s: {"ndcg_at_10": 0.5 + i / 100})[0]
    obj = json.loads(path.read_text())
    first = dict(obj["scores"]["test"][0], ndcg_at_10=0.01, main_score=0.01)
    obj["scores"]["test"].append(first)  # the same subset again, another score
    path.write_text(json.dumps(obj))
    name = first["hf_subset"]
    with pytest.raises(LmebError, match=rf"{path}: scores.test has two entries for subset '{name}'"):
        read_dataset_result(path)
    for command in (["table", str(root)], ["leaderboard", str(root), "--out", str(tmp_path / "site")],
                    ["compare", "m", "m", str(root)]):
        assert cli(command) == 2
        err = capsys.readouterr().err
        assert str(path) in err and "two entries for subset" in err and len(err.strip().splitlines()) == 1


# -------------------------------------------------------------------------------- a missing candidates file
@pytest.fixture
def locomo_without_candidates(real_data: Path, tmp_path: Path) -> Path:
    """A copy of the real LoCoMo (its rule has candidates at the dataset root) without candidates.jsonl."""
    root = tmp_path / "data"
    shutil.copytree(real_data / "Dialogue" / "LoCoMo", root / "Dialogue" / "LoCoMo")
    (root / "Dialogue" / "LoCoMo" / "candidates.jsonl").unlink()
    return root


def test_missing_candidates_is_warned_recorded_and_marked(locomo_without_candidates: Path, real_data: Path,
                                                          tmp_path: Path, capsys) -> None:
    out = tmp_path / "results"
    base = ["run", "--model", "bm25", "--tasks", "LoCoMo/open_domain", "--no-progress"]
    assert cli([*base, "--data", str(real_data), "--output", str(out), "--name", "published"]) == 0
    capsys.readouterr()
    assert cli([*base, "--data", str(locomo_without_candidates), "--output", str(out), "--name", "nocands"]) == 0
    err = capsys.readouterr().err
    missing = locomo_without_candidates / "Dialogue" / "LoCoMo" / "candidates.jsonl"
    assert f"{missing} is missing" in err and "not the published task" in err
    kept = read_dataset_result(out / "published" / "wo_inst" / "LoCoMo.json")
    changed = read_dataset_result(out / "nocands" / "wo_inst" / "LoCoMo.json")
    assert kept.subsets["open_domain"].provenance["task_scope"] == "published"
    assert changed.subsets["open_domain"].provenance["task_scope"] == NO_CANDIDATES
    assert source_label(changed) == f"{LOCAL}, {NO_CANDIDATES}" and data_source(kept) == LOCAL
    assert changed.score("open_domain") != kept.score("open_domain")  # the whole corpus: another task
    assert cli(["table", str(out), "--view", "subsets", "--dataset", "LoCoMo"]) == 0
    table = capsys.readouterr().out
    assert next(line for line in table.splitlines() if line.startswith("nocands")).split()[1] == "wo_inst‡"
    assert "‡ candidates missing" in table
    from lmeb.leaderboard.site import _run_entries  # the page's badge for the same mark

    rows = {r["model"]: r for r in _run_entries(as_results(out))}
    assert rows["nocands"]["scope"].startswith("candidates missing: some dataset ran without its candidates file")
    assert "scope" not in rows["published"]
    # validate: an error for a dataset whose rule requires candidates, accepted on request
    assert cli(["validate", "--data", str(locomo_without_candidates), "--tasks", "LoCoMo"]) == 1
    assert "--allow-missing-candidates" in capsys.readouterr().out
    assert cli(["validate", "--data", str(locomo_without_candidates), "--tasks", "LoCoMo",
                "--allow-missing-candidates"]) == 0


def test_a_run_into_a_folder_of_another_data_source_warns(sample_data: Path, tmp_path: Path, capsys) -> None:
    """`make run` (the sample) then a run on other data into the same --output: one warning line."""
    out = tmp_path / "results"
    base = ["run", "--model", "bm25", "--tasks", "Proced_mem_bench/easy", "--no-progress", "--output", str(out)]
    assert cli([*base, "--data", str(sample_data)]) == 0
    assert "holds results on" not in capsys.readouterr().err
    local = tmp_path / "local"
    shutil.copytree(sample_data / "Semantic" / "QASPER", local / "Semantic" / "QASPER")  # ids say synthetic...
    for path in (local / "Semantic" / "QASPER").rglob("*.jsonl"):  # ... unless rewritten
        path.write_text(path.read_text().replace("synthetic", "real"))
    for path in (local / "Semantic" / "QASPER").rglob("*.tsv"):
        path.write_text(path.read_text().replace("synthetic", "real"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli([*base[:4], "QASPER", *base[5:], "--data", str(local)]) == 0
    err = capsys.readouterr().err
    folder = out / "bm25" / "wo_inst"
    assert f"warning: {folder} holds results on synthetic data (Proced_mem_bench); this run is on local data" in err
    models = {r.model for r in as_results(out)}
    assert models == {"bm25 [synthetic]", "bm25 [local]"}
    assert len(all_tasks()) == 22


# ------------------------------------------------------------------------------------------ docs/results.md
def test_every_command_of_docs_results_runs(mixed: Path, sample_data: Path, tmp_path: Path, capsys) -> None:
    """Each ``lmeb`` line of docs/results.md runs as written, on the mixed folder and the synthetic sample."""
    import shlex

    doc = (Path(__file__).resolve().parents[1] / "docs" / "results.md").read_text(encoding="utf-8")
    from doc_blocks import bodies

    lines = [line for block in bodies(doc, "bash") for line in block.splitlines()
             if line.startswith("lmeb ")]
    assert len(lines) == 4
    here = {"results/": str(mixed), "~/lmeb-data/eval_data": str(sample_data), "mteb-results/": str(tmp_path / "m"),
            "~/.cache/lmeb": str(tmp_path / "cache")}
    for line in lines:
        argv = [here.get(word, word) for word in shlex.split(line.split("#")[0])[1:]]
        assert cli(argv) == 0, (line, capsys.readouterr().err)
    assert (tmp_path / "m" / "bm25").is_dir()


def test_the_leaderboard_badge_follows_the_tables_synthetic_rule(tmp_path: Path, write_results) -> None:
    """A file whose subsets (not its top-level provenance) say synthetic: § in the tables, the badge on the page."""
    from lmeb.leaderboard.site import _run_entries
    from lmeb.report.views import build_table

    write_results(tmp_path, "copied", datasets=["LoCoMo"], scores=lambda t, i, s: {"ndcg_at_10": 0.5},
                  subset_provenance={"synthetic": True})
    assert [r.marks for r in build_table(tmp_path, view="datasets").rows] == ["§"]
    (row,) = _run_entries(as_results(tmp_path))
    assert row["synthetic"].startswith("synthetic data (lmeb sample")
