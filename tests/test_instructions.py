"""The instruction question: one model's w_inst against its wo_inst (compare MODEL@w_inst MODEL@wo_inst), the
table view of the instruction effect, and a model that ignores instructions (BM25) marked as such."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmeb.cli import main as cli
from lmeb.tasks.registry import MEMORY_TYPES, all_tasks

GAIN = {"Episodic": 0.04, "Dialogue": 0.02, "Semantic": -0.01, "Procedural": 0.0}  # w_inst - wo_inst per type


def _per_query(task, name, setting):
    base = 0.3 + 0.1 * MEMORY_TYPES.index(task.memory_type)
    return {f"q{i}": base + 0.01 * i + (GAIN[task.memory_type] if setting == "w_inst" else 0.0) for i in range(4)}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, write_results) -> Path:
    root = tmp_path_factory.mktemp("results")
    for setting in ("wo_inst", "w_inst"):
        def scores(task, i, name, setting=setting):
            v = sum(_per_query(task, name, setting).values()) / 4
            return {"ndcg_at_10": v, "R_cap_at_10": v}

        write_results(root, "org/m", setting, scores=scores, per_query=lambda t, n, s=setting: _per_query(t, n, s))
        # BM25 ignores instructions: the engine records uses_instructions: false; both settings score the same
        write_results(root, "bm25", setting, scores=lambda t, i, n: {"ndcg_at_10": 0.4, "R_cap_at_10": 0.5},
                      provenance={"uses_instructions": False}, datasets=["LoCoMo", "Gorilla"])
    return root


def test_instruction_effect_view(results: Path, capsys) -> None:
    assert cli(["table", str(results), "--view", "instructions", "--with-paper", "wo_inst", "--format", "json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    m = next(r for r in obj["rows"] if r["model"] == "org/m")
    assert m["setting"] == "w_inst - wo_inst" and m["complete"] == "22/22"
    for mtype, gain in GAIN.items():
        assert m["cells"][f"{mtype} N@10"]["value"] == pytest.approx(100 * gain, abs=1e-6)
    # Mean (Type) = mean of the 4 type gains; Mean (Dataset) weighs types by their 2/6/8/6 datasets
    assert m["cells"]["Mean (Type) N@10"]["value"] == pytest.approx(100 * sum(GAIN.values()) / 4, abs=1e-6)
    weights = {"Episodic": 2, "Dialogue": 6, "Semantic": 8, "Procedural": 6}
    assert m["cells"]["Mean (Dataset) R@10"]["value"] == pytest.approx(
        100 * sum(GAIN[t] * n for t, n in weights.items()) / 22, abs=1e-6)
    bm25 = next(r for r in obj["rows"] if r["model"] == "bm25")
    assert bm25["marks"] == "†" and bm25["cells"]["Dialogue N@10"] == {"value": None, "complete": False,
                                                                        "parts": "1/6"}
    assert any("ignores instructions" in f for f in obj["footnotes"])
    kalm = next(r for r in obj["rows"] if r["model"] == "KaLM-Embedding-Gemma3" and r["source"] == "published")
    assert kalm["cells"]["Episodic N@10"]["value"] == pytest.approx(70.89 - 67.01, abs=1e-6)  # Table 3 - Table 2
    assert cli(["table", str(results), "--view", "instructions"]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.startswith("org/m")).split()
    assert line[1:4] == ["w_inst", "-", "wo_inst"] and line[4] == "+4.00" and line[8] == "-1.00"
    assert "bm25" in text and "w_inst - wo_inst†" in text
    assert cli(["table", str(results), "--view", "instructions", "--setting", "w_inst"]) == 2
    assert "--setting does not go with --view instructions" in capsys.readouterr().err


def test_paper_view_marks_a_model_that_ignores_instructions(results: Path, capsys) -> None:
    assert cli(["table", str(results), "--format", "csv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert any(r.startswith("bm25,w_inst†,") for r in rows) and any(r.startswith("bm25,wo_inst,") for r in rows)
    assert cli(["table", str(results)]) == 0
    assert "† the model ignores instructions (uses_instructions: false): its w_inst equals its wo_inst" in \
        capsys.readouterr().out


def test_compare_one_models_two_settings(results: Path, capsys) -> None:
    assert cli(["compare", "m@w_inst", "m@wo_inst", str(results), "--resamples", "64", "--format", "json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert (obj["model_a"], obj["setting_a"], obj["model_b"], obj["setting_b"]) == ("org/m", "w_inst", "org/m",
                                                                                    "wo_inst")
    rows = {r["dataset"]: r["cells"] for r in obj["rows"]}
    assert rows["LoCoMo"]["delta A - B"]["value"] == pytest.approx(100 * GAIN["Dialogue"])
    for mtype, gain in GAIN.items():  # per memory type, the same paired statistics
        assert rows[mtype]["delta A - B"]["value"] == pytest.approx(100 * gain)
    assert rows["Mean (Type)"]["delta A - B"]["value"] == pytest.approx(100 * sum(GAIN.values()) / 4)
    per_type = {m: sum(len(t.subsets) for t in all_tasks() if t.memory_type == m) for m in MEMORY_TYPES}
    assert obj["summary"]["wins"] == per_type["Episodic"] + per_type["Dialogue"]  # every subset gains there
    assert (obj["summary"]["losses"], obj["summary"]["ties"]) == (per_type["Semantic"], per_type["Procedural"])
    assert cli(["compare", "m", "m", str(results)]) == 2
    assert "compare its settings with m@w_inst m@wo_inst" in capsys.readouterr().err
    assert cli(["compare", "m@w_inst", "m@wo_inst", str(results), "--resamples", "64"]) == 0
    assert capsys.readouterr().out.startswith("org/m@w_inst (A) vs org/m@wo_inst (B), w_inst vs wo_inst")


def test_leaderboard_notes_a_model_that_ignores_instructions(results: Path, tmp_path: Path) -> None:
    assert cli(["leaderboard", str(results), "--out", str(tmp_path / "site"), "--no-figures"]) == 0
    data = json.loads((tmp_path / "site" / "data.json").read_text(encoding="utf-8"))
    bm25 = {r["setting"]: r for r in data["rows"] if r["model"] == "bm25"}
    assert bm25["w_inst"]["note"] == "the model ignores instructions (uses_instructions: false): its w_inst equals " \
                                     "its wo_inst"
    assert "note" not in bm25["wo_inst"] and all("note" not in r for r in data["rows"] if r["model"] == "org/m")
