"""Memory growth: --scope corpus against an independent full-corpus ranking, reproducible distractors,
scoped result identity, the growth view and figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from toy_models import bag_of_words

import lmeb
from lmeb.cli import main as cli
from lmeb.data.reader import load_subset
from lmeb.engine.growth import parse_distractors, scope_rows, scoped_name, scoped_run_key, split_scoped_name
from lmeb.engine.metrics import K_VALUES, evaluate
from lmeb.engine.options import EvalOptions
from lmeb.errors import LmebError
from lmeb.report.growth_view import growth_table, write_growth_figure
from lmeb.report.render import render
from lmeb.reporter import Reporter
from lmeb.results.dataset_result import read_results
from lmeb.tasks.registry import get_task


class Hashed:
    """Bag of hashed words, dot product: integer vectors, so every float32 score is exact."""

    similarity = "dot"

    def encode(self, texts, kind, instruction=None):
        return bag_of_words(texts, 512)

    def config(self):
        return {"model": "hashed-512"}


SUBSETS = ("temporal_reasoning", "open_domain")


@pytest.mark.slow
def test_scope_corpus_equals_an_independent_full_corpus_ranking(real_data: Path) -> None:
    res = lmeb.evaluate(Hashed(), tasks=",".join(f"LoCoMo/{s}" for s in SUBSETS), data=real_data,
                        options=EvalOptions(scope="corpus"),
                        cache_dir=None, name="hashed", reporter=Reporter(lambda m: None))
    pool = lmeb.evaluate(Hashed(), tasks=f"LoCoMo/{SUBSETS[0]}", data=real_data, cache_dir=None, name="hashed",
                         reporter=Reporter(lambda m: None))
    (result,) = res
    assert result.model == "hashed@corpus" and result.provenance["scope"] == "corpus"
    enc = Hashed()
    for name in SUBSETS:
        subset = load_subset(get_task("LoCoMo"), real_data, name)
        q, d = enc.encode(subset.query_texts, "query"), enc.encode(subset.corpus.texts, "document")
        sims = q @ d.T  # the whole queries x corpus matrix, here only
        run = {}
        for i, qid in enumerate(subset.query_ids):
            ranked = sorted(zip(subset.corpus.ids, sims[i].tolist(), strict=True), key=lambda x: (x[1], x[0]),
                            reverse=True)[:1000]
            run[qid] = dict(ranked)
        expected = evaluate(subset.qrels, run, K_VALUES).scores
        got = result.subsets[name].scores
        assert set(got) == set(expected)
        assert all(got[m] == expected[m] for m in expected), name  # every metric cell, exactly
        assert result.subsets[name].provenance["scope"]["searched_docs"] == len(subset.corpus)
    assert pool[0].subsets[SUBSETS[0]].scores["ndcg_at_10"] != result.subsets[SUBSETS[0]].scores["ndcg_at_10"]


def test_distractor_rows_are_the_pool_plus_other_scenes(real_data: Path) -> None:
    subset = load_subset(get_task("LoCoMo"), real_data, "open_domain")
    pool, _ = scope_rows(subset, "pool")
    grown, info = scope_rows(subset, "x2", seed=5)
    again, _ = scope_rows(subset, "x2", seed=5)
    other, _ = scope_rows(subset, "x2", seed=6)
    assert info["scope"] == "x2" and info["seed"] == 5 and info["searched_docs"] > info["pool_docs"]
    for p, g, a, _o in zip(pool, grown, again, other, strict=True):
        assert np.array_equal(g, a)  # the seed fixes the draw
        assert np.array_equal(g[:p.shape[0]], p)  # the pool first, unchanged
        extra = g[p.shape[0]:]
        assert extra.shape[0] == 2 * p.shape[0] and not set(extra) & set(p)  # LoCoMo has enough other turns
    assert any(not np.array_equal(g, o) for g, o in zip(grown, other, strict=True))


@pytest.mark.slow
def test_distractor_runs_are_reproducible_from_the_recorded_seed(real_data: Path, tmp_path: Path) -> None:
    outs = []
    for n, seed in enumerate(("3", "3", "4")):
        out = tmp_path / f"r{n}"
        assert cli(["run", "--model", "bm25", "--tasks", "LoCoMo/open_domain", "--data", str(real_data), "--output",
                    str(out), "--no-cache", "--no-progress", "--distractors", "4", "--seed", seed]) == 0
        outs.append(out / "bm25@x4" / "wo_inst")
    meta = json.loads((outs[0] / "LoCoMo.json").read_text())["lmeb"]
    assert meta["seed"] == 3 and meta["subsets"]["open_domain"]["scope"]["distractors"] == 4
    side = [(o / "LoCoMo.per_query.json").read_bytes() for o in outs]
    ranks = [(o / "LoCoMo.rankings" / "open_domain.npz").read_bytes() for o in outs]
    assert side[0] == side[1] and ranks[0] == ranks[1]
    assert ranks[0] != ranks[2]  # another seed draws other distractors


def test_scope_names_and_run_keys() -> None:
    assert scoped_name("bm25", "pool") == "bm25" and scoped_name("org/m", "x16") == "org/m@x16"
    assert split_scoped_name("org/m@x16") == ("org/m", "x16") and split_scoped_name("a@b") == ("a@b", "pool")
    assert scoped_run_key("k", "pool", 0) == "k"  # existing pool results stay current
    assert len({scoped_run_key("k", s, seed) for s, seed in (("x4", 0), ("x4", 1), ("corpus", 0))}) == 3
    assert parse_distractors("4, 16,4") == [4, 16]
    with pytest.raises(LmebError, match="whole numbers"):
        parse_distractors("4,x")
    with pytest.raises(LmebError, match="--scope pool"):
        lmeb.evaluate("bm25", tasks="LoCoMo", data="/nonexistent-but-checked-later",
                      options=EvalOptions(scope="corpus", distractors=[4]))


def test_growth_view_and_figure_on_the_sample(sample_data: Path, tmp_path: Path) -> None:
    base = ["run", "--model", "bm25", "--tasks", "LoCoMo,Gorilla", "--data", str(sample_data), "--output",
            str(tmp_path), "--no-cache", "--no-progress"]
    assert cli(base) == 0 and cli([*base, "--distractors", "1,3"]) == 0 and cli([*base, "--scope", "corpus"]) == 0
    results = read_results(tmp_path)
    t = growth_table(results)
    assert [r.labels for r in t.rows] == [("bm25", "wo_inst")]
    assert [c for c in t.columns if c[0] == "LoCoMo"] == [("LoCoMo", s) for s in ("pool", "1x", "3x", "corpus")]
    row = t.rows[0]
    pooled = {r.task_name: r for r in results if r.model == "bm25"}
    mean = 100 * np.mean([s.scores["ndcg_at_10"] for s in pooled["LoCoMo"].subsets.values()])
    assert row.cells[("LoCoMo", "pool")].value == pytest.approx(mean)
    text = render(t, "text")
    assert "mean documents per query" in text and "corpus" in text
    png = write_growth_figure(results, tmp_path / "growth.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli(["table", str(tmp_path), "--view", "growth"]) == 0
    from lmeb.leaderboard.site import write_site

    site = write_site(results, tmp_path / "site")
    assert site.out.joinpath("figures", "growth.png").is_file()
    assert any(f["file"] == "figures/growth.png" for f in json.loads((site.out / "data.json").read_text())["figures"])
