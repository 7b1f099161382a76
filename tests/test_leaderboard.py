"""The leaderboard site: data.json content, escaping, atomic replacement, and the page in headless Chromium.

Results are synthetic DatasetResults for every registry subset (two complete models, one of them in both
settings, and one incomplete model), written with the real results writer and read back by the real loader.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from pathlib import Path

import pytest

from lmeb.errors import LmebError
from lmeb.leaderboard.site import build_data, write_site
from lmeb.results.collection import load_results
from lmeb.tasks.registry import get_tasks

EVIL = 'evil <img src=x onerror="window.PWNED=1"> & </script>'

# model -> setting -> base nDCG@10; "beta" is better on Episodic, "alpha" better overall.
MODELS = {"org/alpha-embed": {"wo_inst": 0.50, "w_inst": 0.56}, "beta-embed": {"wo_inst": 0.40}}
PARTIAL = "gamma-partial"


def _score(base: float, task_pos: int, memory_type: str, model: str, i: int) -> float:
    bump = 0.35 if (memory_type == "Episodic" and model.startswith("beta")) else 0.0
    return round(min(0.99, base + bump + 0.01 * (task_pos % 7) + 0.004 * (i % 3)), 4)


@pytest.fixture(scope="session")
def write(write_results):
    """Every registry subset of ``model`` (``skip_dataset`` left out, ``drop_subset_of``'s last subset too)."""

    def write_(root: Path, model: str, setting: str, base: float, skip_dataset: str | None = None,
               drop_subset_of: str | None = None) -> None:
        def scores(task, i, name):
            n = _score(base, task.paper_position, task.memory_type, model, i)
            return {"ndcg_at_10": n, "R_cap_at_10": round(min(1.0, n + 0.1), 4)}

        write_results(root, model, setting, scores=scores, skip=skip_dataset,
                      subsets=lambda t: t.subset_names[:-1] if t.name == drop_subset_of else t.subset_names,
                      subset_provenance={"encoded": {"queries": 3, "documents": 10}, "cached": 2},
                      provenance=lambda t: {"harness_version": "0.1.0", "model_config": {
                          "name": model, "pooling": "mean", "max_length": 512},
                          "data_fingerprint": f"sha256:{t.name.lower()}"})

    return write_


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory, write) -> Path:
    root = tmp_path_factory.mktemp("results")
    for model, settings in MODELS.items():
        for setting, base in settings.items():
            write(root, model, setting, base)
    # incomplete: one Semantic dataset missing, one Dialogue dataset missing a subset
    write(root, PARTIAL, "wo_inst", 0.30, skip_dataset="QASPER", drop_subset_of="LoCoMo")
    return root


def _row(data: dict, model: str, setting: str = "wo_inst", published: bool = False) -> dict:
    return next(r for r in data["rows"] if r["model"] == model and r["setting"] == setting
                and r["published"] == published)


# ------------------------------------------------------------------------------------------ generator


def test_data_rows_numbers_and_provenance(results_dir: Path) -> None:
    data = build_data(load_results([results_dir]), with_paper="both")
    runs = [r for r in data["rows"] if not r["published"]]
    assert sorted((r["model"], r["setting"]) for r in runs) == sorted([
        ("org/alpha-embed", "wo_inst"), ("org/alpha-embed", "w_inst"), ("beta-embed", "wo_inst"), (PARTIAL, "wo_inst")])
    assert [m["name"] for m in data["memory_types"]] == ["Episodic", "Dialogue", "Semantic", "Procedural"]
    assert sum(len(m["datasets"]) for m in data["memory_types"]) == 22

    alpha = _row(data, "org/alpha-embed")
    gorilla = next(t for t in get_tasks() if t.name == "Gorilla")
    expect = statistics.mean(_score(0.50, gorilla.paper_position, "Procedural", "org/alpha-embed", i)
                             for i in range(len(gorilla.subset_names)))
    got = alpha["datasets"]["Gorilla"]
    assert got["scores"]["ndcg_at_10"] == pytest.approx(100 * expect, abs=0.006)  # percent, 2 decimals
    assert got["complete"] and got["done"] == got["total"] == len(gorilla.subset_names)
    assert set(got["subsets"]) == set(gorilla.subset_names)
    assert all(alpha["scores"][g][m] is not None for g in ("Episodic", "mean_dataset", "mean_type")
               for m in ("ndcg_at_10", "R_cap_at_10"))
    assert alpha["incomplete"] == {} and not alpha["has_incomplete"]
    assert alpha["config"] == {"name": "org/alpha-embed", "pooling": "mean", "max_length": 512}
    assert alpha["provenance"]["harness_version"] == "0.1.0"
    assert alpha["datasets"]["Gorilla"]["provenance"] == {"data_fingerprint": "sha256:gorilla"}
    assert alpha["counts"] == {"cached": 2 * 193, "encoded.documents": 10 * 193, "encoded.queries": 3 * 193}

    partial = _row(data, PARTIAL)
    assert partial["has_incomplete"]
    assert "QASPER" not in partial["datasets"]
    locomo = partial["datasets"]["LoCoMo"]  # missing a subset: no dataset score, its 4 subsets kept
    assert not locomo["complete"] and locomo["done"] == locomo["total"] - 1 == len(locomo["subsets"])
    assert locomo["scores"] == {"ndcg_at_10": None, "R_cap_at_10": None}
    assert all(v["ndcg_at_10"] is not None for v in locomo["subsets"].values())
    # counts of complete parts, and no mean over fewer parts: LoCoMo at 4/5 leaves Dialogue 5/6 complete
    assert partial["incomplete"] == {"Semantic": "7/8 datasets", "Dialogue": "5/6 datasets",
                                     "mean_dataset": "20/22 datasets", "mean_type": "2/4 types"}
    assert all(partial["scores"][k] == {"ndcg_at_10": None, "R_cap_at_10": None} for k in partial["incomplete"])
    assert "Episodic" not in partial["incomplete"] and partial["scores"]["Episodic"]["ndcg_at_10"] is not None
    longmem = next(t for t in get_tasks() if t.name == "LongMemEval")  # a complete dataset keeps its score
    expect = statistics.mean(_score(0.30, longmem.paper_position, "Dialogue", PARTIAL, i)
                             for i in range(len(longmem.subset_names)))
    assert partial["datasets"]["LongMemEval"]["scores"]["ndcg_at_10"] == pytest.approx(100 * expect, abs=0.006)

    paper = [r for r in data["rows"] if r["published"]]
    assert len(paper) == 30 and sorted({r["setting"] for r in paper}) == ["w_inst", "wo_inst"]
    kalm = _row(data, "KaLM-Embedding-Gemma3", published=True)
    assert kalm["scores"]["Episodic"]["ndcg_at_10"] == 67.01 and kalm["scores"]["mean_type"]["R_cap_at_10"] == 68.33
    kalm3 = _row(data, "KaLM-Embedding-Gemma3", "w_inst", published=True)
    assert kalm3["scores"]["Episodic"]["ndcg_at_10"] == 70.89 and kalm3["source"] == "LMEB paper, Table 3"
    assert kalm["datasets"] == {} and kalm["incomplete"] == {}


@pytest.fixture(scope="module")
def site(results_dir: Path, tmp_path_factory: pytest.TempPathFactory, write) -> Path:
    """The site built once (with figures) from the runs, a model with a hostile name and the paper's Table 2."""
    tmp = tmp_path_factory.mktemp("site")
    write(tmp / "evil", EVIL, "wo_inst", 0.2)
    out = tmp / "site"
    built = write_site([results_dir, tmp / "evil"], out, with_paper="wo_inst")
    assert built.out == out and built.rows == 5 + 15
    return out


@pytest.mark.slow
def test_site_files_and_escaping(site: Path) -> None:
    assert sorted(p.name for p in site.iterdir()) == ["data.json", "figures", "index.html"]
    assert sorted(p.name for p in site.parent.iterdir()) == ["evil", "site"]  # no temporary folder left
    text = (site / "data.json").read_text(encoding="utf-8")
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"data.json holds {c}"))  # null, never NaN
    assert "NaN" not in text and _row(data, PARTIAL)["scores"]["mean_type"]["ndcg_at_10"] is None
    names = sorted(p.name for p in (site / "figures").iterdir())
    assert names == sorted(f["file"].split("/")[1] for f in data["figures"])
    assert [n for n in names if n.startswith("bar_")] == [f"bar_{t}.png" for t in
                                                          ("dialogue", "episodic", "procedural", "semantic")]
    assert [n for n in names if n.startswith("slope_")] == ["slope_org_alpha-embed_4.png"]  # the one with both
    assert all((site / "figures" / n).read_bytes()[:4] == b"\x89PNG" for n in names)
    page = (site / "index.html").read_text(encoding="utf-8")
    assert EVIL not in page and "<img src=x" not in page and page.count("</script>") == 2
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page  # nothing remote
    assert "window.LMEB_DATA = " in page
    assert EVIL in {r["model"] for r in data["rows"]}  # kept intact in the data, escaped on the page


@pytest.mark.slow
def test_atomic_replace(results_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "site"
    write_site([results_dir], out, with_paper="w_inst", figures=False)
    before = (out / "data.json").read_bytes()
    assert len(json.loads(before)["rows"]) == 4 + 15

    def boom(*_a: object, **_k: object) -> str:
        raise RuntimeError("disk full")

    # a crash while building leaves the previous site untouched and no temporary folder behind
    monkeypatch.setattr("lmeb.leaderboard.site.render_html", boom)
    with pytest.raises(RuntimeError):
        write_site([results_dir], out, figures=False)
    assert (out / "data.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["site"]
    monkeypatch.undo()

    write_site([results_dir], out, figures=False)  # a rebuild replaces the whole site
    assert len(json.loads((out / "data.json").read_text(encoding="utf-8"))["rows"]) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["site"]

    stale = tmp_path / ".site.tmp-killed"  # what a build killed with SIGKILL leaves: removed once old
    stale.mkdir()
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    write_site([results_dir], out, figures=False)
    assert [p.name for p in tmp_path.iterdir()] == ["site"]

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("x")
    with pytest.raises(LmebError, match="not a leaderboard site"):
        write_site([results_dir], precious, figures=False)
    assert [p.name for p in precious.iterdir()] == ["thesis.tex"]


def test_cli(results_dir: Path, tmp_path: Path, capsys) -> None:
    from lmeb.cli import main

    out = tmp_path / "site"
    assert main(["leaderboard", str(results_dir), "--out", str(out), "--title", "My <board>", "--no-figures"]) == 0
    assert "4 rows" in capsys.readouterr().out
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "<title>My &lt;board&gt;</title>" in page
    assert main(["leaderboard", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- browser


def _column(driver, key: str, complete_only: bool = False) -> list[float | str | None]:
    """A column's cells top to bottom: numbers, None for an empty cell, the text of an incomplete cell ('7/8*')."""
    cells = driver.execute_script(  # one round trip instead of one per cell
        "return [...document.querySelectorAll(`#board tbody td[data-key='${arguments[0]}']`)].map(c => c.textContent)",
        key)
    if complete_only:
        cells = [c for c in cells if not c.endswith("*")]
    return [None if c == "–" else c if c.endswith("*") else float(c) for c in cells]


def _models(driver) -> list[tuple[str, str]]:
    return [tuple(x) for x in driver.execute_script(
        "return [...document.querySelectorAll('#board tbody tr')].map(r => [r.dataset.model, r.dataset.setting])")]


@pytest.mark.browser
@pytest.mark.slow
def test_page_in_headless_chromium(browser, site: Path, tmp_path: Path) -> None:
    data = json.loads((site / "data.json").read_text(encoding="utf-8"))
    d = browser
    d.get((site / "index.html").as_uri())
    errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    assert d.execute_script("return window.PWNED") is None
    assert d.title == "LMEB leaderboard"

    # every row is there, default order = Mean (Type) N@10 descending, incomplete (marked *) after complete
    assert sorted(_models(d)) == sorted((r["model"], r["setting"]) for r in data["rows"])
    assert len(_models(d)) == 5 + 15
    mean_type = _column(d, "g:mean_type:ndcg_at_10", complete_only=True)
    assert len(mean_type) == 19 and mean_type == sorted(mean_type, reverse=True)
    assert _models(d)[-1] == (PARTIAL, "wo_inst")
    assert EVIL in [m for m, _ in _models(d)]  # the name shows as text
    partial = d.find_element("css selector", f"#board tbody tr[data-model='{PARTIAL}']")
    cell = partial.find_element("css selector", "td[data-key='g:Semantic:ndcg_at_10']")
    assert cell.text == "7/8*" and "incomplete" in cell.get_attribute("class")  # a count, never a mean
    assert "7/8 datasets" in cell.get_attribute("title") and "incomplete" in partial.text  # the row's badge
    assert [partial.find_element("css selector", f"td[data-key='g:{k}:ndcg_at_10']").text for k in (
        "Dialogue", "mean_dataset", "mean_type")] == ["5/6*", "20/22*", "2/4*"]
    assert _column(d, "g:mean_type:ndcg_at_10")[-1] == "2/4*"
    episodic = partial.find_element("css selector", "td[data-key='g:Episodic:ndcg_at_10']")
    assert not episodic.text.endswith("*")
    assert len(d.find_elements("css selector", "#board tbody tr.published")) == 15

    # click a header: sorted by it, descending; click again: ascending
    d.find_element("css selector", "#board th[data-key='g:Episodic:ndcg_at_10']").click()
    epi = _column(d, "g:Episodic:ndcg_at_10")
    assert None not in epi and epi == sorted(epi, reverse=True) and _models(d)[0] == ("beta-embed", "wo_inst")
    assert _column(d, "g:mean_type:ndcg_at_10", complete_only=True) != mean_type
    d.find_element("css selector", "#board th[data-key='g:Episodic:ndcg_at_10']").click()
    assert _column(d, "g:Episodic:ndcg_at_10") == sorted(epi)
    d.find_element("css selector", "#show-published").click()  # hide the paper's rows
    d.find_element("css selector", "#board th[data-key='model']").click()
    names = [m for m, _ in _models(d)]
    assert names == ["beta-embed", EVIL, PARTIAL, "org/alpha-embed", "org/alpha-embed"]
    d.find_element("css selector", "#board th[data-key='model']").click()
    assert [m for m, _ in _models(d)] == names[::-1]
    d.find_element("css selector", "#show-published").click()

    # filter by memory type: the type's datasets become the columns
    d.find_element("css selector", "#filter-memory-type button[data-value='Semantic']").click()
    semantic = next(t["datasets"] for t in data["memory_types"] if t["name"] == "Semantic")
    heads = [b.text for b in d.find_elements("css selector", "#board thead button[data-dataset]")]
    assert heads == semantic
    d.find_element("css selector", "#board th[data-key='d:QASPER:ndcg_at_10']").click()
    qasper = _column(d, "d:QASPER:ndcg_at_10")  # partial (no QASPER) and paper rows (no datasets) last
    assert None not in qasper[:4] and qasper[:4] == sorted(qasper[:4], reverse=True) and set(qasper[4:]) == {None}
    semantic_type = _column(d, "g:Semantic:ndcg_at_10")  # the type column: numbers and partial's count
    assert None not in semantic_type and [c for c in semantic_type if isinstance(c, str)] == ["7/8*"]
    # the setting filter hides rows
    d.find_element("css selector", "#filter-setting button[data-value='w_inst']").click()
    assert _models(d) == [("org/alpha-embed", "w_inst")]
    d.find_element("css selector", "#filter-setting button[data-value='all']").click()
    d.find_element("css selector", "#filter-memory-type button[data-value='all']").click()

    # drill-down: a model's per-dataset table, then a dataset's subsets; a dataset's per-subset panel
    alpha_row = "#board tbody tr[data-model='org/alpha-embed'][data-setting='{}'] button.model"
    d.find_element("css selector", alpha_row.format("wo_inst")).click()
    panel = d.find_element("id", "model-panel")
    assert "org/alpha-embed" in panel.text and "sha256:locomo" in panel.text and "pooling" in panel.text
    assert len(panel.find_elements("css selector", "tr.dataset")) == 22
    locomo = next(t for t in get_tasks() if t.name == "LoCoMo")
    panel.find_element("css selector", "tr.dataset[data-dataset='LoCoMo'] button").click()
    assert len(panel.find_elements("css selector", "tr.subset")) == len(locomo.subset_names)
    d.find_element("css selector", "#filter-memory-type button[data-value='Dialogue']").click()
    locomo_col = _column(d, "d:LoCoMo:ndcg_at_10")  # sorted by the Dialogue type: partial (5/6*) last
    assert locomo_col[-1] == "4/5*" and sum(isinstance(c, float) for c in locomo_col) == 4
    d.find_element("css selector", "#board thead button[data-dataset='LoCoMo']").click()
    dpanel = d.find_element("id", "dataset-panel")
    assert len(dpanel.find_elements("css selector", "tr.subset-row")) == len(locomo.subset_names)
    partial_col = [r.find_elements("css selector", "td")[-1].text  # the last column: partial, sorted last
                   for r in dpanel.find_elements("css selector", "tbody tr")]
    assert sum(t not in ("–", "4/5*") for t in partial_col) == 4 and partial_col[-2:] == ["–", "4/5*"]
    d.find_element("css selector", f"#board tbody tr[data-model='{PARTIAL}'] button.model").click()
    ppanel = d.find_element("id", "model-panel")
    assert ppanel.find_element("css selector", "tr.dataset[data-dataset='LoCoMo'] td:nth-child(3)").text == "4/5*"
    ppanel.find_element("css selector", "tr.dataset[data-dataset='LoCoMo'] button").click()
    assert len(ppanel.find_elements("css selector", "tr.subset")) == len(locomo.subset_names) - 1  # present ones
    d.find_element("css selector", "#filter-memory-type button[data-value='all']").click()
    d.find_element("css selector", alpha_row.format("w_inst")).click()

    # no run has an efficiency record: the Pareto chart says so instead of drawing nothing
    assert d.find_element("id", "pareto-note").text == "no run has a cost record"
    assert not d.find_elements("css selector", "#pareto svg")

    # the figures load from disk
    imgs = d.find_elements("css selector", "#figures img")
    assert len(imgs) == len(data["figures"]) >= 5
    d.execute_script("window.scrollTo(0, 0)")
    assert all(d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i) for i in imgs)

    assert not [e for e in d.get_log("browser") if e["level"] == "SEVERE"]  # no script errors along the way
    d.set_window_size(1500, d.execute_script("return Math.min(document.body.scrollHeight + 200, 5000)"))
    shot = tmp_path / "leaderboard.png"
    assert d.save_screenshot(str(shot))
    if os.environ.get("LMEB_SCREENSHOT_DIR"):
        dest = Path(os.environ["LMEB_SCREENSHOT_DIR"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, dest / shot.name)
