"""One rule for partial results everywhere (no mean over an incomplete group, shown n/N*): the table's
datasets view, compare, diff, the leaderboard, export-mteb and the run summary, through the CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from lmeb.cli import main as cli
from lmeb.tasks.registry import get_task


def _flat(task, i, name):  # the same score for every subset of a dataset: dataset score = subset score
    v = 0.2 + task.paper_position / 100
    return {"ndcg_at_10": v, "R_cap_at_10": v + 0.05}


@pytest.fixture
def partial(tmp_path: Path, write_results) -> Path:
    """A run of 3 datasets: LoCoMo and LongMemEval complete, Gorilla 1 of its subsets."""
    root = tmp_path / "results"
    write_results(root, "m", datasets=["LoCoMo", "LongMemEval", "Gorilla"], scores=_flat,
                  subsets=lambda t: t.subset_names[:1] if t.name == "Gorilla" else t.subset_names)
    return root


def test_datasets_view_hides_empty_columns_and_keeps_complete(partial: Path, capsys) -> None:
    assert cli(["table", str(partial), "--view", "datasets"]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[2].split()
    gorilla = get_task("Gorilla")
    assert head[:2] == ["Model", "Setting"] and head[-1] == "Complete"
    # only the dataset columns a row has, each type's Mean and the two means
    assert head[2:-1] == ["LoCoMo", "LongMemEval", "Mean", "Gorilla", "Mean", "Dataset", "Type"]
    row = out.splitlines()[4].split()
    assert row[2:4] == [f"{100 * _flat(get_task('LoCoMo'), 0, '')['ndcg_at_10']:.2f}",
                        f"{100 * _flat(get_task('LongMemEval'), 0, '')['ndcg_at_10']:.2f}"]
    assert row[4:] == ["2/6*", f"1/{len(gorilla.subsets)}*", "0/6*", "2/22*", "0/4*", "2/22"]
    assert "19 dataset column(s) without results hidden (--all-columns shows all 22)" in out
    assert len(max(out.splitlines(), key=len)) < 120
    assert cli(["table", str(partial), "--view", "datasets", "--all-columns", "--format", "csv"]) == 0
    header = next(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert len(header) == 2 + 22 + 4 + 2 + 1 and header[-1] == "Complete"


def test_silently_ignored_options_are_errors(partial: Path, capsys) -> None:
    assert cli(["table", str(partial), "--dataset", "LoCoMo"]) == 2
    assert "--dataset goes with --view subsets" in capsys.readouterr().err
    assert cli(["table", str(partial), "--metric", "ndcg_at_10"]) == 2  # the paper view has its own metrics
    assert "--metric applies to views datasets and subsets" in capsys.readouterr().err
    assert cli(["table", str(partial), "--all-columns"]) == 2
    assert "--all-columns goes with --view datasets" in capsys.readouterr().err
    assert cli(["table", str(partial), "--view", "instructions"]) == 2  # only wo_inst: nothing to subtract
    assert "no model has results in both settings" in capsys.readouterr().err


def test_diff_says_why_up_front(partial: Path, capsys) -> None:
    assert cli(["diff", "m", "Qwen3-Embedding-0.6B", str(partial)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("incomplete run: 2/22 datasets complete; not run: EPBench, KnowMeBench")
    assert f"incomplete: Gorilla 1/{len(get_task('Gorilla').subsets)} subsets (missing" in lines[1]
    assert lines[2].split() == ["cell", "run", "paper", "delta"]
    dialogue = next(line for line in lines if line.startswith("Dialogue N@10")).split()
    assert dialogue[2] == "2/6*" and dialogue[-1] == "-"


def test_export_mteb_names_the_incomplete_dataset(partial: Path, tmp_path: Path, capsys) -> None:
    assert cli(["export-mteb", str(partial), str(tmp_path / "mteb")]) == 2
    err = capsys.readouterr().err
    assert f"m (wo_inst): Gorilla 1/{len(get_task('Gorilla').subsets)} subsets" in err
    assert "LoCoMo" not in err and not (tmp_path / "mteb").exists()


@pytest.mark.slow
def test_leaderboard_draws_complete_datasets_when_no_type_is_complete(partial: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "site"
    assert cli(["leaderboard", str(partial), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 row, 1 figure" in printed
    assert "incomplete: m · w/o inst.: 2/22 datasets complete; not run: EPBench" in printed
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["datasets_dialogue.png"]
    data = json.loads((out / "data.json").read_text(encoding="utf-8"))
    assert data["rows"][0]["missing"].startswith("2/22 datasets complete")
    assert data["figures"][0]["caption"].startswith("Dialogue: N@10 of the complete datasets per run")


def _per_query(task, name):
    return {f"{name}-q{i}": (0.1 * (i % 5) + 0.3 * (task.name == "LongMemEval")) for i in range(6)}


@pytest.fixture
def paired(tmp_path: Path, write_results) -> Path:
    """Two models on LoCoMo (complete) and Gorilla (1 subset), per-query values."""
    root = tmp_path / "results"
    for model, shift in (("a", 0.1), ("b", 0.0)):
        write_results(root, model, datasets=["LoCoMo", "Gorilla"],
                      subsets=lambda t: t.subset_names[:1] if t.name == "Gorilla" else t.subset_names,
                      scores=lambda t, i, n: {"ndcg_at_10": 0.5},
                      per_query=lambda t, n, shift=shift: {q: v + shift for q, v in _per_query(t, n).items()})
    return root


def test_compare_follows_the_rule_and_gives_percent_everywhere(paired: Path, capsys) -> None:
    assert cli(["compare", "a", "b", str(paired), "--resamples", "100"]) == 0
    out = capsys.readouterr().out.splitlines()
    n_gorilla = len(get_task("Gorilla").subsets)
    assert out[1] == (f"incomplete: datasets compared on only some subsets (Gorilla 1/{n_gorilla}); no mean over "
                      "an incomplete group (--subsets lists the subsets compared)")
    line = {x.split()[0]: x for x in out[5:] if x}
    assert "+10.00" in line["LoCoMo"].split()  # every query of a is 0.1 above b; LoCoMo is complete
    assert line["Gorilla"].split()[1:5] == ["1/" + str(n_gorilla), "6", f"1/{n_gorilla}*", "-"]
    assert "+" not in line["Gorilla"] and line["Procedural"].split()[4] == "0/6*"
    assert cli(["compare", "a", "b", str(paired), "--resamples", "100", "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    locomo = next(r for r in table if r["Dataset"] == "LoCoMo")
    assert locomo["delta A - B"] == "+10.00" and locomo["subsets"] == "5/5"
    assert next(r for r in table if r["Dataset"] == "Gorilla")["A score"] == f"1/{n_gorilla}*"
    assert cli(["compare", "a", "b", str(paired), "--resamples", "100", "--format", "json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    cells = next(r for r in obj["rows"] if r["dataset"] == "LoCoMo")["cells"]
    assert obj["unit"] == "percent" and cells["delta A - B"]["value"] == pytest.approx(10.0)
    assert next(r for r in obj["rows"] if r["dataset"] == "Gorilla")["cells"]["A score"] == {
        "value": None, "complete": False, "parts": f"1/{n_gorilla}"}


def test_compare_results_positional_and_the_old_option(paired: Path, capsys) -> None:
    assert cli(["compare", "a", "b", "--results", str(paired), "--resamples", "50"]) == 0
    captured = capsys.readouterr()
    assert "--results is deprecated" in captured.err and "LoCoMo" in captured.out


def test_run_summary_shows_no_mean_over_some_subsets(sample_data: Path, tmp_path: Path, capsys) -> None:
    task = get_task("LoCoMo")
    first, second = task.subset_names[:2]
    args = ["run", "--model", "bm25", "--data", str(sample_data), "--output", str(tmp_path), "--no-cache",
            "--no-progress", "--tasks"]
    assert cli([*args, f"LoCoMo/{first}"]) == 0  # one subset asked for: its own score, not 1/5*
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("LoCoMo")).split()
    result = json.loads((tmp_path / "bm25" / "wo_inst" / "LoCoMo.json").read_text())["scores"]["test"][0]
    assert line[:4] == [f"LoCoMo/{first}", "1/1", f"{100 * result['ndcg_at_10']:.2f}",
                        f"{100 * result['R_cap_at_10']:.2f}"]
    assert "n/N*" not in out
    assert cli([*args, f"LoCoMo/{second}"]) == 0  # the file now holds 2 of 5 subsets: no mean over them
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("LoCoMo")).split()
    assert line[:4] == ["LoCoMo", "1/1", f"2/{len(task.subsets)}*", f"2/{len(task.subsets)}*"]
    assert "n/N* = the results file has n of the dataset's N subsets: no dataset score" in out
