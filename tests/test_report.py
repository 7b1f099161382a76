"""Tables from results files: aggregation checked by hand, completeness marks, exact md/csv/LaTeX text, the CLI.

Synthetic results for every registry subset, written by the real results writer and read back by the
real loader: "org/alpha" complete; "beta" without QASPER and without LoCoMo's last subset.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from lmeb.cli import main as cli
from lmeb.errors import LmebError
from lmeb.report.aggregate import aggregate, resolve_model, scores_frame
from lmeb.report.render import best_marks, render
from lmeb.report.views import table
from lmeb.results.dataset_result import DatasetResult
from lmeb.tasks.registry import MEMORY_TYPES, get_tasks

BASE = {"org/alpha": 0.30, "beta": 0.20}


def value(model: str, pos: int, i: int) -> float:
    """nDCG@10 of subset ``i`` of the dataset at paper position ``pos``: varies per subset, so means matter."""
    return round(BASE[model] + pos / 100 + 0.002 * (i % 4), 6)


@pytest.fixture(scope="module")
def write(write_results):
    """This module's results: ``value`` per subset (R@10 = N@10 + 0.1); ``drop_last_of`` a dataset's last subset."""

    def write_(root: Path, model: str, setting: str = "wo_inst", skip: str | None = None,
               drop_last_of: str | None = None, datasets: list[str] | None = None, values=value) -> None:
        def scores(task, i, name):
            n = values(model, task.paper_position, i)
            return {"ndcg_at_10": n, "R_cap_at_10": round(n + 0.1, 6)}

        write_results(root, model, setting, scores=scores, datasets=datasets, skip=skip, eval_time=0.5,
                      subsets=lambda t: t.subset_names[:-1] if t.name == drop_last_of else t.subset_names)

    return write_


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory, write) -> Path:
    root = tmp_path_factory.mktemp("results")
    write(root, "org/alpha")
    write(root, "beta", skip="QASPER", drop_last_of="LoCoMo")
    return root


def _mean(values: list[float | None]) -> float | None:
    """The mean, or None (no mean) when any part is missing or incomplete."""
    return None if None in values else statistics.fmean(values)  # type: ignore[arg-type]


def hand_aggregates(model: str, skip: str | None = None, drop_last_of: str | None = None) -> dict[str, float | None]:
    """The paper's aggregation written out with the statistics module, independent of pandas.

    Every dataset, type and mean: its value, or None where a part is missing (no mean over fewer parts).
    """
    ds: dict[str, tuple[str, float | None]] = {}
    for t in get_tasks():
        complete = t.name not in (skip, drop_last_of)
        ds[t.name] = (t.memory_type, statistics.fmean(value(model, t.paper_position, i) for i in range(len(t.subsets)))
                      if complete else None)
    types = {m: _mean([v for mt, v in ds.values() if mt == m]) for m in MEMORY_TYPES}
    return {**{d: v for d, (_, v) in ds.items()}, **types, "Mean (Dataset)": _mean([v for _, v in ds.values()]),
            "Mean (Type)": _mean(list(types.values()))}


def test_scores_frame_long_form(results_dir: Path) -> None:
    frame = scores_frame(results_dir)
    assert list(frame.columns) == ["model", "setting", "memory_type", "dataset", "subset", "value", "published"]
    assert len(frame) == 193 + (193 - 1 - 1)  # beta lacks QASPER (1 subset) and one LoCoMo subset
    row = frame[(frame["model"] == "org/alpha") & (frame["dataset"] == "LoCoMo")]
    assert list(row["subset"]) == get_tasks(["LoCoMo"])[0].subset_names
    assert not frame["published"].any()


def test_aggregation_by_hand(results_dir: Path) -> None:
    agg = aggregate(scores_frame(results_dir))
    for model, kwargs in (("org/alpha", {}), ("beta", {"skip": "QASPER", "drop_last_of": "LoCoMo"})):
        expect = hand_aggregates(model, **kwargs)
        got = agg[agg["model"] == model].set_index("group")["value"]
        for group, v in expect.items():
            if v is None:  # incomplete: no mean (QASPER has no row at all)
                assert group == "QASPER" or math.isnan(got[group]), (model, group)
            else:
                assert got[group] == pytest.approx(v, abs=1e-12), (model, group)
    assert sum(v is None for v in hand_aggregates("beta", "QASPER", "LoCoMo").values()) == 6
    # one cell by hand: alpha Episodic = mean(EPBench, KnowMeBench); EPBench has 54 subsets -> i%4 pattern
    epb = statistics.fmean(0.31 + 0.002 * (i % 4) for i in range(54))
    kmb = statistics.fmean(0.32 + 0.002 * (i % 4) for i in range(15))
    alpha = agg[(agg["model"] == "org/alpha") & (agg["group"] == "Episodic")]
    assert alpha["value"].item() == pytest.approx((epb + kmb) / 2)


def test_incomplete_groups_are_marked_not_hidden(results_dir: Path) -> None:
    agg = aggregate(scores_frame(results_dir)).set_index(["model", "group"])
    assert agg.loc[("org/alpha", "Mean (Type)"), "complete"]
    beta = agg.loc["beta"]
    assert not beta.loc["LoCoMo", "complete"] and (beta.loc["LoCoMo", "n"], beta.loc["LoCoMo", "total"]) == (4, 5)
    # n = parts complete: a type counts complete datasets (LoCoMo at 4/5 does not count), Mean (Type) type scores
    parts = {g: (beta.loc[g, "n"], beta.loc[g, "total"]) for g in ("Dialogue", "Semantic", "Mean (Dataset)",
                                                                  "Mean (Type)")}
    assert parts == {"Dialogue": (5, 6), "Semantic": (7, 8), "Mean (Dataset)": (20, 22), "Mean (Type)": (2, 4)}
    assert not beta.loc[list(parts), "complete"].any() and beta.loc[["LoCoMo", *parts], "value"].isna().all()
    assert beta.loc["Episodic", "complete"] and beta.loc["Procedural", "complete"]

    df = table(results_dir)
    text = render(df, "text")
    beta_line = next(line for line in text.splitlines() if line.startswith("beta"))
    cells = beta_line.split()
    # Episodic and Procedural complete (numbers); Dialogue, Semantic and both means incomplete: counts, no mean
    expect = hand_aggregates("beta", "QASPER", "LoCoMo")
    assert cells[2] == f"{100 * expect['Episodic']:.2f}" and cells[8] == f"{100 * expect['Procedural']:.2f}"
    assert cells[4:8] == ["5/6*", "5/6*", "7/8*", "7/8*"]
    assert cells[10:14] == ["20/22*", "20/22*", "2/4*", "2/4*"] and cells[-1] == "20/22"
    assert "n/N* = incomplete: only n of N parts complete, no mean computed" in text
    alpha_line = next(line for line in text.splitlines() if line.startswith("org/alpha"))
    assert "*" not in alpha_line and alpha_line.split()[-1] == "22/22"
    expect = hand_aggregates("org/alpha")
    assert alpha_line.split()[2] == f"{100 * expect['Episodic']:.2f}"


def test_paper_view_layout(results_dir: Path) -> None:
    df = table(results_dir, setting="wo_inst")
    assert [c[0] for c in df.columns[::2]] == [*MEMORY_TYPES, "Mean (Dataset)", "Mean (Type)"]
    assert list(df.columns[:2]) == [("Episodic", "N@10"), ("Episodic", "R@10")]
    assert list(df.index) == [("beta", "wo_inst", "run"), ("org/alpha", "wo_inst", "run")]
    # R@10 was written as N@10 + 0.1 for every subset, so every R@10 number is N@10 + 10 points (the
    # incomplete groups, beta's Dialogue, Semantic and both means, have no number in either metric)
    for group in df.columns.get_level_values(0).unique():
        delta = df[(group, "R@10")] - df[(group, "N@10")]
        assert delta.dropna().round(9).eq(10).all() and delta.isna().sum() == (group not in ("Episodic", "Procedural"))


def test_incomplete_model_keeps_complete_parts_only(results_dir: Path, tmp_path: Path, write) -> None:
    expect = hand_aggregates("beta", "QASPER", "LoCoMo")
    wide = table(results_dir, view="datasets")
    beta, cols = wide.loc[("beta", "wo_inst", "run")], list(wide.columns)
    for (group, col), v in beta.items():
        key = {"Mean": group, "Dataset": "Mean (Dataset)", "Type": "Mean (Type)"}.get(col, col)
        if expect[key] is None:  # LoCoMo 4/5, QASPER not run, Dialogue, Semantic, both means: no number
            assert math.isnan(v), (group, col)
        else:  # 20 complete datasets and the Episodic and Procedural type scores keep their numbers
            assert v == pytest.approx(100 * expect[key], abs=1e-9), (group, col)
    assert beta.notna().sum() == 20 + 2 and len(cols) == 22 + 4 + 2
    text = {c: t for c, t in zip(cols, render(wide, "csv").splitlines()[1].split(",")[2:], strict=False)}
    assert (text[("Dialogue", "LoCoMo")], text[("Semantic", "QASPER")], text[("Dialogue", "LongMemEval")]) == (
        "4/5*", "", f"{100 * expect['LongMemEval']:.2f}")
    # best/second marks only among numbers: beta's Dialogue Mean count is never bold
    md = render(wide, "md").splitlines()
    assert md[2].startswith("| beta |") and "| 4/5\\* |" in md[2] and "| 5/6\\* |" in md[2]
    assert md[2].endswith("| 20/22\\* | 2/4\\* | 20/22 |") and "| <u>21.79</u> |" in md[2]  # a number: second
    # a model with one dataset only: its type is 1/6 complete, a type never run is '-', the means are counts
    paper = table(three_models(tmp_path, write), setting="wo_inst")
    a = render(paper, "text").splitlines()[4].split()
    assert a[:2] == ["a", "wo_inst"] and a[2:] == ["-", "-", "1/6*", "1/6*", "-", "-", "-", "-", "1/22*", "1/22*",
                                                   "0/4*", "0/4*", "1/22"]
    assert paper.isna().all().all() and not best_marks(paper)


def three_models(root: Path, write) -> Path:
    vals = {"a": [0.5, 0.4, 0.3, 0.2, 0.1], "b": [0.6, 0.4, 0.2, 0.25, 0.1], "c": [0.6, 0.3, 0.25, 0.2]}
    for model, v in vals.items():
        write(root, model, datasets=["LoCoMo"], values=lambda m, pos, i, v=v: v[i],
              drop_last_of="LoCoMo" if model == "c" else None)
    return root


def test_subsets_view_exact_md_csv_latex(tmp_path: Path, write) -> None:
    df = table(three_models(tmp_path, write), view="subsets", dataset="locomo")
    # by hand: single_hop 50/60/60, multi_hop 40/40/30, temporal 30/20/25, open_domain 20/25/20, adversarial
    # 10/10/-, Mean 30/31/4/5* (c incomplete: its subsets shown, no mean). Ties share a mark; second = next
    # distinct value.
    assert render(df, "md") == (
        "| Model | Setting | LoCoMo single_hop | LoCoMo multi_hop | LoCoMo temporal_reasoning | LoCoMo open_domain"
        " | LoCoMo adversarial | LoCoMo Mean | Complete |\n"
        "|:---|:---|---:|---:|---:|---:|---:|---:|---:|\n"
        "| a | wo_inst | <u>50.00</u> | **40.00** | **30.00** | <u>20.00</u> | **10.00** | <u>30.00</u> | 5/5 |\n"
        "| b | wo_inst | **60.00** | **40.00** | 20.00 | **25.00** | **10.00** | **31.00** | 5/5 |\n"
        "| c | wo_inst | **60.00** | <u>30.00</u> | <u>25.00</u> | <u>20.00</u> | - | 4/5\\* | 4/5 |\n"
        "\nn/N\\* = incomplete: only n of N parts complete, no mean computed; Complete = complete subsets / all\n"
    )
    assert render(df, "csv") == (
        "Model,Setting,LoCoMo single_hop,LoCoMo multi_hop,LoCoMo temporal_reasoning,LoCoMo open_domain,"
        "LoCoMo adversarial,LoCoMo Mean,Complete\n"
        "a,wo_inst,50.00,40.00,30.00,20.00,10.00,30.00,5/5\n"
        "b,wo_inst,60.00,40.00,20.00,25.00,10.00,31.00,5/5\n"
        "c,wo_inst,60.00,30.00,25.00,20.00,,4/5*,4/5\n"
    )
    assert render(df, "latex") == (
        "\\begin{tabular}{llrrrrrrr}\n"
        "\\toprule\n"
        " &  & \\multicolumn{6}{c}{LoCoMo} &  \\\\\n"
        "\\cmidrule(lr){3-8}\n"
        "Model & Setting & single\\_hop & multi\\_hop & temporal\\_reasoning & open\\_domain & adversarial & Mean"
        " & Complete \\\\\n"
        "\\midrule\n"
        "a & wo\\_inst & \\underline{50.00} & \\textbf{40.00} & \\textbf{30.00} & \\underline{20.00} & \\textbf{10.00}"
        " & \\underline{30.00} & 5/5 \\\\\n"
        "b & wo\\_inst & \\textbf{60.00} & \\textbf{40.00} & 20.00 & \\textbf{25.00} & \\textbf{10.00}"
        " & \\textbf{31.00} & 5/5 \\\\\n"
        "c & wo\\_inst & \\textbf{60.00} & \\underline{30.00} & \\underline{25.00} & \\underline{20.00} & -"
        " & 4/5$^{*}$ & 4/5 \\\\\n"
        "\\bottomrule\n"
        "\\end{tabular}\n"
        "% n/N* = incomplete: only n of N parts complete, no mean computed; Complete = complete subsets / all\n"
    )


def test_json_format_and_datasets_view(results_dir: Path) -> None:
    df = table(results_dir, view="datasets", metric="R_cap_at_10")
    assert ("Dialogue", "LoCoMo") in df.columns and ("Mean", "Type") in df.columns
    obj = json.loads(render(df, "json"))
    assert obj["view"] == "datasets" and obj["metric"] == "R_cap_at_10" and obj["unit"] == "percent"
    beta = next(r for r in obj["rows"] if r["model"] == "beta")
    assert beta["cells"]["Semantic QASPER"] is None
    assert beta["cells"]["Dialogue LoCoMo"] == {"value": None, "complete": False, "parts": "4/5"}
    assert beta["cells"]["Dialogue Mean"] == {"value": None, "complete": False, "parts": "5/6"}
    assert beta["cells"]["Mean Type"] == {"value": None, "complete": False, "parts": "2/4"}
    assert beta["complete"] == "20/22"
    expect = statistics.fmean(value("beta", 4, i) + 0.1 for i in range(6)) * 100  # LongMemEval: complete, kept
    assert beta["cells"]["Dialogue LongMemEval"] == {"value": pytest.approx(expect, abs=1e-6), "complete": True}


def test_errors_are_one_line(results_dir: Path, tmp_path: Path, write) -> None:
    with pytest.raises(LmebError, match=r"unknown metric 'ndcg@10'.*available: R_cap_at_10, ndcg_at_10"):
        table(results_dir, view="datasets", metric="ndcg@10")
    with pytest.raises(LmebError, match="does not exist"):
        table(tmp_path / "nope")
    with pytest.raises(LmebError, match="needs --dataset"):
        table(results_dir, view="subsets")
    with pytest.raises(LmebError, match="unknown model 'alpa'; did you mean org/alpha"):
        resolve_model(scores_frame_results(results_dir), "alpa")
    assert resolve_model(scores_frame_results(results_dir), "ALPHA") == "org/alpha"
    dup = tmp_path / "dup"
    write(dup, "beta", datasets=["LoCoMo"])
    with pytest.raises(LmebError, match="also in"):
        scores_frame([results_dir, dup])


def scores_frame_results(root: Path) -> list[DatasetResult]:
    from lmeb.results.collection import load_results

    return load_results([root])


def test_cli_round_trip(results_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["table", str(results_dir), "--format", "csv", "--with-paper", "wo_inst"]) == 0
    out = capsys.readouterr().out
    assert out == render(table(results_dir, with_paper="wo_inst"), "csv")
    lines = out.splitlines()
    assert lines[0].startswith("Model,Setting,Source,Episodic N@10")
    assert any(line.startswith("KaLM-Embedding-Gemma3,wo_inst,published,67.01,74.56") for line in lines)
    assert cli(["table", str(results_dir / "missing")]) == 2
    assert "lmeb table: error:" in capsys.readouterr().err
    assert cli(["table", str(results_dir), "--view", "datasets", "--metric", "ndcg"]) == 2
    assert "available:" in capsys.readouterr().err
