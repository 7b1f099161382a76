"""The leaderboard's cost columns, cost filter, Pareto chart, synthetic badge and † marker, driven in headless Chromium.

Results: BM25 run for real on the synthetic sample's LoCoMo in both settings (so its files carry an efficiency
record, provenance ``synthetic: true`` and ``uses_instructions: false``); two models written on every dataset
with known efficiency blocks (not synthetic); one written without an efficiency record (results from before
lmeb recorded it); and the paper's Table 2 rows (no cost).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lmeb
from lmeb.engine import efficiency
from lmeb.leaderboard.site import write_site
from lmeb.results.dataset_result import read_dataset_result
from lmeb.tasks.registry import get_tasks

# model -> (model seconds per text, parameters, nDCG@10); texts per dataset differ so the sums are checked
KNOWN = {"cheap-embed": (0.002, 22_000_000, 0.50), "big-embed": (0.020, 335_000_000, 0.70)}
OLD = "old-embed"
COST_KEYS = ("e:seconds_per_1k_texts", "e:texts_per_s", "e:parameters", "e:peak_rss_mb")


def _texts(task) -> int:
    return 100 * task.paper_position


@pytest.fixture(scope="module")
def cost_site(sample_data: Path, tmp_path_factory: pytest.TempPathFactory, write_results) -> tuple[Path, Path]:
    """(site, results root): the runs above, built without PNG figures (the page draws its own Pareto chart)."""
    root = tmp_path_factory.mktemp("cost-results")
    for setting in ("wo_inst", "w_inst"):
        lmeb.evaluate("bm25", tasks="LoCoMo", data=sample_data, output=root, cache_dir=None, setting=setting)
    for model, (per_text, params, ndcg) in KNOWN.items():
        write_results(root, model, scores=lambda t, i, n, q=ndcg: {"ndcg_at_10": q, "R_cap_at_10": q + 0.1},
                      provenance=lambda t, s=per_text, p=params: {"efficiency": efficiency.block(
                          _texts(t), None, s * _texts(t), "cpu", p, rss_mb=500.0 + t.paper_position)})
    write_results(root, OLD, scores=lambda t, i, n: {"ndcg_at_10": 0.6, "R_cap_at_10": 0.7},
                  provenance={"model_config": {"fingerprint": "ab" * 32}})  # the older weights fingerprint
    out = tmp_path_factory.mktemp("cost-site") / "site"
    write_site([root], out, with_paper="wo_inst", figures=False)
    return out, root


def _rows(d) -> list[tuple[str, str]]:
    return [tuple(x) for x in d.execute_script(
        "return [...document.querySelectorAll('#board tbody tr')].map(r => [r.dataset.model, r.dataset.setting])")]


def _cells(d, key: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(model, setting) -> (text, title) of one column's cells."""
    got = d.execute_script(
        "return [...document.querySelectorAll('#board tbody tr')].map(r => { const c = r.querySelector("
        "`td[data-key='${arguments[0]}']`); return [r.dataset.model, r.dataset.setting, c.textContent, c.title]; })",
        key)
    return {(m, s): (text, title) for m, s, text, title in got}


def _set_max_cost(d, value: str) -> None:
    from selenium.webdriver.common.keys import Keys

    box = d.find_element("id", "max-cost")  # select what is there, type over it, leave the field: one change event
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(value or Keys.BACKSPACE, Keys.TAB)


def _severe(d) -> list[dict]:
    return [e for e in d.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.browser
@pytest.mark.slow
def test_cost_pareto_and_marks_in_headless_chromium(browser, cost_site: tuple[Path, Path]) -> None:
    site, root = cost_site
    data = json.loads((site / "data.json").read_text(encoding="utf-8"))
    d = browser
    d.set_window_size(1500, 1100)
    d.get((site / "index.html").as_uri())
    assert not _severe(d)
    runs = {(r["model"], r["setting"]): r for r in data["rows"] if not r["published"]}
    assert sorted(runs) == sorted([("bm25", "wo_inst"), ("bm25", "w_inst"), ("big-embed", "wo_inst"),
                                   ("cheap-embed", "wo_inst"), (OLD, "wo_inst")])
    total = len(data["rows"])
    assert len(_rows(d)) == total == 5 + 15
    assert not d.find_elements("css selector", "#board td[data-key^='e:']")  # cost columns hidden by default

    # Cost: Show adds the four cost columns, summed over each run's datasets
    d.find_element("css selector", "#filter-cost button[data-value='show']").click()
    heads = [th.get_attribute("data-key") for th in d.find_elements("css selector", "#board th[data-key^='e:']")]
    assert heads == list(COST_KEYS)
    assert "Cost (summed over its datasets)" in d.find_element("css selector", "#board thead tr.groups").text
    cols = {k: _cells(d, k) for k in COST_KEYS}
    rss = 500.0 + max(t.paper_position for t in get_tasks())
    for model, (per_text, params, _) in KNOWN.items():
        key = (model, "wo_inst")
        assert [cols[k][key][0] for k in COST_KEYS] == [f"{per_text * 1000:.2f}", f"{1 / per_text:.1f}",
                                                        f"{params / 1e6:.1f}", f"{rss:.0f}"]
    for setting in ("wo_inst", "w_inst"):  # BM25: the block its real run wrote, no parameters
        block = read_dataset_result(root / "bm25" / setting / "LoCoMo.json").provenance["efficiency"]
        texts = [cols[k][("bm25", setting)][0] for k in COST_KEYS]
        assert float(texts[0]) == pytest.approx(block["seconds_per_1k_texts"], abs=0.0051)
        assert float(texts[1]) == pytest.approx(block["texts_per_s"], abs=0.051)
        assert texts[2] == "–" and float(texts[3]) == pytest.approx(block["peak_rss_mb"], abs=0.51)
    best = {k: d.execute_script(f"return [...document.querySelectorAll(`#board td.best[data-key='{k}']`)]"
                                ".map(c => c.parentElement.dataset.model)") for k in COST_KEYS}
    per_1k = {k: r["efficiency"]["seconds_per_1k_texts"] for k, r in runs.items() if r["efficiency"]}
    assert best["e:seconds_per_1k_texts"] == [min(per_1k, key=per_1k.get)[0]]  # lower is better: the cheapest
    assert best["e:parameters"] == ["cheap-embed"]
    assert best["e:texts_per_s"] == [max(per_1k, key=lambda k: 1 / per_1k[k])[0]]  # higher is better
    old = cols["e:seconds_per_1k_texts"][(OLD, "wo_inst")]
    assert old[0] == "–" and "no efficiency record" in old[1]
    published = [v for k, v in cols["e:seconds_per_1k_texts"].items() if k not in runs]
    assert len(published) == 15 and all(v == ("–", "the paper publishes no cost") for v in published)

    # sort by s/1k texts: cheapest first, rows without a cost last; hiding the column goes back to the default sort
    d.find_element("css selector", "#board th[data-key='e:seconds_per_1k_texts']").click()
    costed = sorted((r["efficiency"]["seconds_per_1k_texts"], k) for k, r in runs.items() if r["efficiency"])
    assert _rows(d)[:4] == [k for _, k in costed]
    d.find_element("css selector", "#filter-cost button[data-value='hide']").click()
    assert not d.find_elements("css selector", "#board td[data-key^='e:']")
    sorted_by = d.find_element("css selector", "#board th[aria-sort]")
    assert sorted_by.get_attribute("data-key") == "g:mean_type:ndcg_at_10"
    assert sorted_by.get_attribute("aria-sort") == "descending"
    d.find_element("css selector", "#filter-cost button[data-value='show']").click()

    # the cost filter: rows over the limit, and rows without a cost, go; clearing it brings them back
    for limit in ("5", "1000", "0.0001"):
        _set_max_cost(d, limit)
        keep = sorted(k for k, r in runs.items()
                      if r["efficiency"] and r["efficiency"]["seconds_per_1k_texts"] <= float(limit))
        assert sorted(_rows(d)) == keep
        assert d.find_element("id", "rowcount").text.lower() == f"{len(keep)} of {total} rows"
        assert d.find_element("id", "max-cost").get_attribute("value") == limit  # kept across the redraw
        assert len(keep) == {"5": 3, "1000": 4, "0.0001": 0}[limit]  # big-embed costs 20; nothing costs 0.0001
    _set_max_cost(d, "")
    assert len(_rows(d)) == total

    # the Pareto chart: a point per run with a cost, the front as data.json marks it, drawn where its numbers say
    pareto = {c["key"]: c["points"] for c in data["pareto"]["costs"]}
    assert sorted(pareto) == ["parameters", "seconds_per_1k_texts"]
    for key, points in pareto.items():
        svg = d.find_element("css selector", f"#pareto svg.pareto[data-cost='{key}']")
        circles = svg.find_elements("css selector", "circle.point")
        with_cost = [r for r in runs.values() if (r["efficiency"] or {}).get(key) is not None]
        assert len(circles) == len(points) == len(with_cost) == (4 if key == "seconds_per_1k_texts" else 2)
        drawn = {c.get_attribute("data-row"): c for c in circles}
        assert set(drawn) == {r["id"] for r in with_cost}
        assert {c.get_attribute("data-row") for c in svg.find_elements("css selector", "circle.point.front")} == {
            p["row"] for p in points if p["front"]}
        at = {p["row"]: (float(drawn[p["row"]].get_attribute("cx")), float(drawn[p["row"]].get_attribute("cy")))
              for p in points}
        for a in points:  # cheaper is further left, better is higher up (smaller y)
            for b in points:
                assert a["cost"] >= b["cost"] or at[a["row"]][0] < at[b["row"]][0]
                assert a["quality"] <= b["quality"] or at[a["row"]][1] < at[b["row"]][1]
        big = next(p for p in points if p["model"] == "big-embed")
        tip = drawn[big["row"]].find_element("css selector", "title").get_attribute("textContent")
        assert tip.startswith("big-embed · w/o inst.: ") and "quality 70.00" in tip
    assert "old-embed · w/o inst." in d.find_element("id", "pareto-left-out").text
    section = d.find_element("id", "pareto").text
    assert "Mean (Dataset) N@10" in section and "LoCoMo" in section  # the quality and what it is averaged over
    cheap = runs[("cheap-embed", "wo_inst")]["id"]
    d.find_element("css selector", f"#pareto svg[data-cost='seconds_per_1k_texts'] circle[data-row='{cheap}']").click()
    panel = d.find_element("id", "model-panel")
    assert panel.get_attribute("data-row") == cheap and "cheap-embed" in panel.text
    assert "seconds_per_1k_texts" in panel.text  # its cost record

    # synthetic badge on the runs over lmeb sample data only, its note as the tooltip
    badges = {(b.find_element("xpath", "ancestor::tr").get_attribute("data-model"),
               b.find_element("xpath", "ancestor::tr").get_attribute("data-setting")): b
              for b in d.find_elements("css selector", "#board tbody .badge.synthetic")}
    assert sorted(badges) == [("bm25", "w_inst"), ("bm25", "wo_inst")]
    assert all(b.text == "synthetic" and "synthetic data (lmeb sample" in b.get_attribute("title")
               for b in badges.values())

    # the unverified-weights badge on the run written with the older fingerprint only, the note as its tooltip
    unverified = d.find_elements("css selector", "#board tbody .badge.unverified")
    assert [b.find_element("xpath", "ancestor::tr").get_attribute("data-model") for b in unverified] == [OLD]
    assert unverified[0].text == "unverified weights" and "older weights fingerprint" in unverified[0].get_attribute(
        "title")
    assert not d.find_elements("css selector", "#board tbody .badge.scope")

    # † on BM25 w/ inst. only (it ignores instructions), the reason as the setting cell's tooltip
    settings = {(r.get_attribute("data-model"), r.get_attribute("data-setting")): r.find_element(
        "css selector", "td:nth-child(3)") for r in d.find_elements("css selector", "#board tbody tr")}
    marked = {k: td for k, td in settings.items() if "†" in td.text}
    assert list(marked) == [("bm25", "w_inst")]
    assert marked[("bm25", "w_inst")].text == "w/ inst. †"
    assert marked[("bm25", "w_inst")].get_attribute("title") == (
        "the model ignores instructions (uses_instructions: false): its w_inst equals its wo_inst")
    assert not settings[("bm25", "wo_inst")].get_attribute("title")

    assert not _severe(d)  # no script errors along the way
