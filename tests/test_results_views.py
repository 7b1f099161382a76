"""``Results.table()`` shows what was run: never a row of NaN for a partial run (the README's first example
ran two datasets and printed one row of NaN type means); ``Results.show()`` renders it with n/N* counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from toy_models import bag_of_words

import lmeb


class HashEncoder:
    def encode(self, texts, kind, instruction=None):
        return bag_of_words(texts, 64)


@pytest.fixture(scope="module")
def two_datasets(sample_data: Path) -> lmeb.Results:
    return lmeb.evaluate(HashEncoder(), tasks="LoCoMo,Gorilla", data=sample_data, name="hash", revision="v1",
                         cache_dir=None)


def test_partial_run_table_has_the_datasets_it_ran_and_no_nan(two_datasets: lmeb.Results) -> None:
    frame = two_datasets.table()
    assert [c[1] for c in frame.columns] == ["LoCoMo", "Gorilla"]
    assert not frame.isna().any().any()
    locomo = next(r for r in two_datasets if r.task_name == "LoCoMo")
    expect = 100 * np.mean([s.main_score for s in locomo.subsets.values()])
    assert frame.iloc[0][("Dialogue", "LoCoMo")] == pytest.approx(expect)
    assert two_datasets.table("paper").isna().all().all()  # the paper view, asked for: no mean over fewer parts


def test_show_renders_the_incomplete_groups_as_counts(two_datasets: lmeb.Results) -> None:
    text = two_datasets.show()
    assert "LoCoMo" in text and "Gorilla" in text and "1/6*" in text and "2/22*" in text
    assert "n/N* = incomplete" in text
    md = two_datasets.show(fmt="md")
    assert md.startswith("|") or "\n|" in md
    assert "LoCoMo" in md and "1/6" in md  # Markdown escapes the mark


def test_one_subset_shows_that_subset(sample_data: Path) -> None:
    res = lmeb.evaluate(HashEncoder(), tasks="Gorilla/gorilla_tensor", data=sample_data, name="hash", revision="v1",
                        cache_dir=None)
    frame = res.table()
    assert list(frame.columns) == [("Gorilla", "gorilla_tensor")]
    assert frame.iloc[0, 0] == pytest.approx(100 * res[0].subsets["gorilla_tensor"].main_score)
    assert "1/3*" in res.show()
