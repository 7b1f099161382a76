"""The leaderboard page never shows a JavaScript value as text: no stray "null" where an optional control
or note is absent (a site built without --with-paper has no published-rows checkbox; a site whose runs all
have an efficiency record has no "not plotted" note)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lmeb.leaderboard.site import write_site

ASSETS = Path(__file__).resolve().parents[1] / "lmeb" / "leaderboard" / "assets"


def test_conditional_children_are_filtered_before_dom_insertion() -> None:
    """replaceChildren/append turn a null argument into the text "null": every call whose arguments hold a
    `? ... : null` alternative passes them through .filter(Boolean)."""
    for js in ASSETS.glob("*.js"):
        text = js.read_text(encoding="utf-8")
        for m in re.finditer(r"\.(replaceChildren|append)\(", text):
            depth, i = 1, m.end()
            while depth:
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            call = text[m.start():i]
            if re.search(r":\s*null\b", call):
                assert ".filter(Boolean)" in call, f"{js.name}: {call[:80]}..."


@pytest.mark.browser
@pytest.mark.slow
def test_no_stray_null_without_published_rows(browser, write_results, tmp_path: Path) -> None:
    root = tmp_path / "results"
    write_results(root, "alpha-embed", "wo_inst", scores=lambda task, i, name: {"ndcg_at_10": 0.5, "R_cap_at_10": 0.6})
    site = tmp_path / "site"
    write_site([root], site, with_paper=None, figures=False)
    d = browser
    d.get((site / "index.html").as_uri())
    text = d.execute_script("return document.body.innerText")
    assert "alpha-embed" in text
    assert not re.search(r"\bnull\b", text), [line for line in text.splitlines() if "null" in line]
    assert not d.find_elements("id", "show-published")  # the checkbox is absent, not a "null"
