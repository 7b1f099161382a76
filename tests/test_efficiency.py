"""Efficiency as a result: the cost block per subset and dataset, the efficiency views, the Pareto plot."""

from __future__ import annotations

import json

import pytest
from toy_models import bag_of_words

import lmeb
from lmeb.cli import main as cli
from lmeb.engine import efficiency
from lmeb.errors import LmebError
from lmeb.leaderboard.pareto import front, pareto_data
from lmeb.leaderboard.site import write_site
from lmeb.report.render import render
from lmeb.report.views import build_table

TASKS = "LoCoMo,Gorilla/gorilla_tensor"


class WordEncoder:
    """A hashed bag of words that counts its tokens (words) in ``stats``, as real encoders count theirs."""

    similarity = "cosine"

    def __init__(self) -> None:
        self.stats = {"tokens": 0}
        self.seen: list[str] = []

    def config(self) -> dict:
        return {"class": "WordEncoder", "dim": 64}

    def encode(self, texts, kind, instruction=None):
        self.seen += list(texts)
        self.stats["tokens"] += sum(len(t.split()) for t in texts)
        return bag_of_words(texts, 64)


@pytest.fixture(scope="module")
def runs(sample_data, tmp_path_factory):
    """Results of the word encoder and BM25 on two sample datasets, written as ``lmeb run`` does."""
    out = tmp_path_factory.mktemp("eff-results")
    encoder = WordEncoder()
    words = lmeb.evaluate(encoder, tasks=TASKS, data=sample_data, output=out, cache_dir=None, name="words")
    bm25 = lmeb.evaluate("bm25", tasks=TASKS, data=sample_data, output=out, cache_dir=None)
    return out, encoder, words, bm25


def test_encoder_run_records_its_cost_per_subset_and_dataset(runs):
    _, encoder, words, _ = runs
    total_texts = total_tokens = 0
    for ds in words:
        blocks = [s.provenance["efficiency"] for s in ds.subsets.values()]
        for sub, block in zip(ds.subsets.values(), blocks, strict=True):
            assert block["texts"] == sub.provenance["texts"]["encoded"]  # unique texts encoded, not cache hits
            assert block["tokens"] == sub.provenance["model_counts"]["model"]["tokens"]
            assert block["device"] == "cpu" and block["parameters"] is None  # no torch module: no count
            assert block["peak_rss_mb"] > 10 and block["peak_gpu_mb"] is None
        first = blocks[0]
        assert first["texts"] > 0 and first["seconds"] > 0 and first["texts_per_s"] > 0 and first["tokens_per_s"] > 0
        # the rate comes from the unrounded seconds; the block keeps seconds to 4 decimals (a toy subset takes
        # well under a millisecond, so a relative tolerance on texts / seconds fails by chance)
        assert first["texts"] / first["texts_per_s"] == pytest.approx(first["seconds"], abs=0.5e-4 + 1e-9)
        summed = ds.provenance["efficiency"]
        assert summed["texts"] == sum(b["texts"] for b in blocks)
        assert summed["tokens"] == sum(b["tokens"] for b in blocks)
        assert summed["seconds"] == pytest.approx(sum(b["seconds"] for b in blocks), abs=1e-3)
        assert summed["peak_rss_mb"] == max(b["peak_rss_mb"] for b in blocks)
        total_texts += summed["texts"]
        total_tokens += summed["tokens"]
    assert total_texts == len(encoder.seen)  # every text the model saw, once
    assert total_tokens == encoder.stats["tokens"] == sum(len(t.split()) for t in encoder.seen)


def test_bm25_records_texts_but_no_tokens(runs):
    _, _, _, bm25 = runs
    for ds in bm25:
        block = ds.provenance["efficiency"]
        assert block["tokens"] is None and block["tokens_per_s"] is None and block["parameters"] is None
        assert block["texts"] >= sum(s.provenance["queries"] for s in ds.subsets.values())
        assert block["texts_per_s"] > 0


def test_combine_sums_counts_maxes_peaks_and_recomputes_rates():
    a = efficiency.block(100, 1000, 2.0, "cpu", 5, rss_mb=300.0, gpu_mb=None)
    b = efficiency.block(300, None, 2.0, "cuda:0", 5, rss_mb=500.0, gpu_mb=1024.0)
    both = efficiency.combine([a, None, b])
    assert both["texts"] == 400 and both["tokens"] == 1000 and both["seconds"] == 4.0
    assert both["texts_per_s"] == 100.0 and both["seconds_per_1k_texts"] == 10.0
    assert both["peak_rss_mb"] == 500.0 and both["peak_gpu_mb"] == 1024.0 and both["device"] == "cpu,cuda:0"
    assert efficiency.combine([None, None]) is None
    assert efficiency.block(0, None, 0.5, "cpu", None)["texts_per_s"] is None  # all cached: no rate


def test_efficiency_view_renders_text_and_json(runs, capsys):
    out, *_ = runs
    text = render(build_table([out], view="efficiency"), "text")
    assert "Texts/s" in text and "s/1k texts" in text and "words" in text and "bm25" in text
    obj = json.loads(render(build_table([out], view="efficiency"), "json"))
    rows = {r["model"]: r["cells"] for r in obj["rows"]}
    assert obj["view"] == "efficiency" and rows["words"]["Time Texts/s"]["value"] > 0
    assert rows["words"]["Work Tokens"]["value"] > 0 and rows["bm25"]["Work Tokens"] is None
    assert rows["words"]["Model Device"] == {"text": "cpu"}
    per_ds = json.loads(render(build_table([out], view="efficiency-datasets"), "json"))
    assert {(r["model"], r["dataset"]) for r in per_ds["rows"]} == {(m, d) for m in ("bm25", "words")
                                                                    for d in ("Gorilla", "LoCoMo")}
    one = build_table([out], view="efficiency", dataset="gorilla")
    assert one.title.endswith("on Gorilla") and len(one.rows) == 2
    assert cli(["table", str(out), "--view", "efficiency", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][0]["cells"]["Time Seconds"]["value"] > 0


def test_results_without_efficiency_are_said_so(tmp_path, write_results):
    write_results(tmp_path, "old", scores=lambda task, i, sub: {"ndcg_at_10": 0.5}, datasets=["LoCoMo"])
    t = build_table([tmp_path], view="efficiency")
    assert "no efficiency record" in " ".join(t.footnotes)
    assert [r.labels[0] for r in t.rows] == ["old"] and all(t.show(t.rows[0], c) == "-" for c in t.columns)
    with pytest.raises(LmebError, match="--metric and --with-paper do not go with --view efficiency"):
        build_table([tmp_path], view="efficiency", metric="recall_at_10")


def test_pareto_front_keeps_only_undominated_points():
    points = [(1.0, 50.0), (2.0, 60.0), (3.0, 55.0), (2.0, 40.0), (0.5, 30.0), (4.0, 60.0)]
    assert front(points) == [True, True, False, False, True, False]


def test_leaderboard_writes_the_pareto_figure_and_data(runs, tmp_path, write_results):
    out, *_ = runs
    write_results(tmp_path / "old", "old", scores=lambda task, i, sub: {"ndcg_at_10": 0.5}, datasets=["LoCoMo"])
    site = write_site([out, tmp_path / "old"], tmp_path / "site")
    data = json.loads((site.out / "data.json").read_text())
    pareto = data["pareto"]
    # types incomplete: the datasets complete in every costed run (Gorilla has 1 of its subsets: not complete)
    assert pareto["quality"] == "Mean (Dataset) N@10 (%)" and pareto["quality_over"].endswith(": LoCoMo")
    by_cost = {c["key"]: c["points"] for c in pareto["costs"]}
    points = {p["model"]: p for p in by_cost["seconds_per_1k_texts"]}
    assert set(points) == {"bm25", "words"} and any(p["front"] for p in points.values())
    rows = {r["id"]: r for r in data["rows"]}
    assert [rows[i]["model"] for i in pareto["left_out"]] == ["old"]  # no efficiency record
    for p in points.values():
        row = rows[p["row"]]
        assert p["cost"] == row["efficiency"]["seconds_per_1k_texts"] > 0
        assert p["quality"] == pytest.approx(row["datasets"]["LoCoMo"]["scores"]["ndcg_at_10"], abs=0.01)
    assert "parameters" not in by_cost  # neither run has a torch model
    assert (site.out / "figures" / "pareto_seconds_per_1k_texts.png").stat().st_size > 1000
    assert any(f["file"].endswith("pareto_seconds_per_1k_texts.png") for f in data["figures"])
    page = (site.out / "index.html").read_text()
    assert 'id: "max-cost"' in page or "max-cost" in page


def test_pareto_uses_mean_type_when_every_run_has_it():
    def row(i, q, cost):
        return {"id": f"r{i}", "model": f"m{i}", "setting": "wo_inst", "published": False, "datasets": {},
                "scores": {"mean_type": {"ndcg_at_10": q}}, "efficiency": {"seconds_per_1k_texts": cost,
                                                                           "parameters": None}}
    pareto = pareto_data([row(0, 50.0, 1.0), row(1, 60.0, 10.0), row(2, 55.0, 20.0)])
    assert pareto["quality"] == "Mean (Type) N@10 (%)"
    assert [p["front"] for p in pareto["costs"][0]["points"]] == [True, True, False]


@pytest.mark.slow
def test_minilm_counts_tokens_as_its_tokenizer_and_its_parameters(minilm_path):
    from lmeb.models.sentence_transformer import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder(minilm_path, device="cpu")
    texts = ["a short one", "Where did Caroline go last weekend?", "long " * 600]  # the last is truncated
    encoder.encode(texts, "document")
    ids = encoder.model.tokenizer(texts, truncation=True, max_length=encoder.max_length)["input_ids"]
    assert encoder.stats["tokens"] == sum(len(x) for x in ids) and len(ids[2]) == encoder.max_length
    assert efficiency.parameter_count(encoder) == sum(p.numel() for p in encoder.model.parameters()) > 20_000_000
    assert efficiency.device_of(encoder) == "cpu"
