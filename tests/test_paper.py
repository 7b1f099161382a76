"""The paper's published rows: every Mean (Dataset) and Mean (Type) cell recomputed with lmeb's aggregation,
the published rows beside runs, and diffs against them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmeb.cli import main as cli
from lmeb.errors import LmebError
from lmeb.report.aggregate import registry_counts
from lmeb.report.paper import PAPER_FILE, PaperDiff, check_published_means, paper_diff, paper_model, paper_rows
from lmeb.report.views import table
from lmeb.results.collection import load_results
from lmeb.tasks.registry import MEMORY_TYPES


def test_registry_dataset_counts_are_the_papers() -> None:
    assert registry_counts() == {"Episodic": 2, "Dialogue": 6, "Semantic": 8, "Procedural": 6}


def test_every_published_mean_is_recomputed_within_rounding() -> None:
    check = check_published_means()
    doc = json.loads(PAPER_FILE.read_text(encoding="utf-8"))
    n_rows = sum(len(rows) for rows in doc["settings"].values())
    assert n_rows == 30 and len(check) == n_rows * 2 * 2  # 15 models x 2 settings x 2 metrics x 2 means
    # the paper rounds type scores to 2 decimals, so a recomputed mean may be off by a rounding step
    bad = check[check["delta"].abs() > 0.01]
    assert bad.empty, bad.to_string()
    # 110 of the 120 cells match exactly after rounding; the other 10 differ by 0.005 to 0.0075 points
    assert int(check["exact"].sum()) == 110
    assert check.loc[~check["exact"], "delta"].abs().between(0.0049, 0.0076).all()
    # by hand, Table 2 KaLM-Embedding-Gemma3 N@10: (2*67.01 + 6*50.89 + 8*47.81 + 6*60.70) / 22 = 53.9118
    row = check[(check["setting"] == "wo_inst") & (check["model"] == "KaLM-Embedding-Gemma3")
                & (check["metric"] == "ndcg_at_10")].set_index("level")
    assert row.loc["mean_dataset", "recomputed"] == pytest.approx((2 * 67.01 + 6 * 50.89 + 8 * 47.81 + 6 * 60.70) / 22)
    assert row.loc["mean_type", "recomputed"] == pytest.approx((67.01 + 50.89 + 47.81 + 60.70) / 4)


def test_paper_model_lookup() -> None:
    assert paper_model("qwen3-embedding-0.6b", "w_inst").model == "Qwen3-Embedding-0.6B"
    assert len(paper_rows("wo_inst")) == 15
    with pytest.raises(LmebError, match=r"did you mean.*Qwen3-Embedding-8B"):
        paper_model("Qwen3-Embedding-8", "wo_inst")


def _write_flat(write_results, root: Path, model: str, per_type: dict[str, float],
                setting: str = "wo_inst", skip: str | None = None) -> None:
    """Every subset of a type gets the same score, so type scores are exactly ``per_type``."""

    def scores(task, i, name):
        v = per_type[task.memory_type]
        return {"ndcg_at_10": v, "R_cap_at_10": v + 0.05}

    write_results(root, model, setting, scores=scores, skip=skip)


def test_with_paper_rows_and_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str], write_results) -> None:
    row = paper_model("Qwen3-Embedding-0.6B", "wo_inst")
    per_type = {m: row.types[m]["ndcg_at_10"] / 100 + 0.01 for m in MEMORY_TYPES}  # one point above the paper
    _write_flat(write_results, tmp_path, "Qwen/Qwen3-Embedding-0.6B", per_type)

    df = table(tmp_path, with_paper="wo_inst")
    pub = df.loc[("Qwen3-Embedding-0.6B", "wo_inst", "published")]
    assert pub[("Episodic", "N@10")] == pytest.approx(row.types["Episodic"]["ndcg_at_10"])
    assert pub[("Mean (Type)", "R@10")] == pytest.approx(row.mean_type["R_cap_at_10"])
    assert len(df) == 16 and sum(s == "published" for _, _, s in df.index) == 15

    result = paper_diff(load_results([tmp_path]), "qwen3-embedding-0.6b", "Qwen3-Embedding-0.6B")
    assert isinstance(result, PaperDiff) and (result.model, result.paper_model, result.setting, result.missing) == (
        "Qwen/Qwen3-Embedding-0.6B", "Qwen3-Embedding-0.6B", "wo_inst", "")  # the run's full name, complete
    diff = result.frame
    n10 = diff[diff["metric"] == "N@10"].set_index("group")
    for m in MEMORY_TYPES:
        assert n10.loc[m, "delta"] == pytest.approx(1.0)
    # means: the run's Mean (Dataset) is exact, the paper's is rounded -> delta 1 +- 0.01
    assert n10.loc["Mean (Dataset)", "delta"] == pytest.approx(1.0, abs=0.01)
    assert diff["complete"].all() and len(diff) == 12

    assert cli(["diff", "Qwen3-Embedding-0.6B", "Qwen3-Embedding-0.6B", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Episodic N@10" in out and "+1.00" in out
    assert cli(["diff", "nomodel", "Qwen3-Embedding-0.6B", str(tmp_path)]) == 2
    assert "unknown model 'nomodel'" in capsys.readouterr().err
    assert cli(["diff", "Qwen3-Embedding-0.6B", "Qwen3-Embedding-0.6B", str(tmp_path), "--setting", "w_inst"]) == 2
    assert "no results in setting w_inst" in capsys.readouterr().err


def test_diff_lists_incomplete_run_cells_without_a_mean(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        write_results) -> None:
    row = paper_model("Qwen3-Embedding-0.6B", "wo_inst")
    per_type = {m: row.types[m]["ndcg_at_10"] / 100 for m in MEMORY_TYPES}
    _write_flat(write_results, tmp_path, "qwen", per_type, skip="QASPER")
    result = paper_diff(load_results([tmp_path]), "qwen", "Qwen3-Embedding-0.6B")
    assert result.missing == "21/22 datasets complete; not run: QASPER"  # a field: no pandas op can drop it
    diff = result.frame.set_index(["group", "metric"])
    assert len(diff) == 12 and list(diff.index[~diff["complete"]].get_level_values(0).unique()) == [
        "Semantic", "Mean (Dataset)", "Mean (Type)"]
    assert diff.loc[~diff["complete"], ["run", "delta"]].isna().all().all()  # never a mean over 21 datasets
    assert diff.loc[("Semantic", "N@10"), "parts"] == "7/8" and diff.loc[("Mean (Type)", "R@10"), "parts"] == "3/4"
    assert diff.loc[("Episodic", "N@10"), "delta"] == pytest.approx(0, abs=1e-9)
    assert cli(["diff", "qwen", "Qwen3-Embedding-0.6B", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    semantic = next(line for line in out.splitlines() if line.startswith("Semantic N@10")).split()
    assert semantic == ["Semantic", "N@10", "7/8*", f"{row.types['Semantic']['ndcg_at_10']:.2f}", "-"]
    assert "n/N* = incomplete run cell" in out
    assert out.splitlines()[:2] == ["qwen (wo_inst) - paper Qwen3-Embedding-0.6B, percentage points",
                                    f"incomplete run: {result.missing}; its types and means without all their "
                                    "datasets show n/N* and no delta"]


@pytest.mark.slow  # a fresh interpreter; tests/test_api.py's test_import_lmeb_is_light runs in the fast loop
def test_published_rows_do_not_depend_on_the_presentation_layer() -> None:
    """report.paper and report.aggregate import neither report.views nor the renderers (no import cycle)."""
    import subprocess
    import sys

    code = ("import sys, lmeb.report.paper, lmeb.report.aggregate; "
            "print(sorted(m for m in sys.modules"
            " if m in ('lmeb.report.views', 'lmeb.report.render', 'lmeb.report.table')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
