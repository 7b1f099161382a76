"""``lmeb.evaluate`` with every kind of model and ``lmeb.Results`` (the README's examples: tests/test_readme.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

import lmeb
from lmeb.engine.options import EvalOptions
from lmeb.errors import LmebError

TASK = "Gorilla/gorilla_tensor"


def bag_of_words(texts: list[str]) -> np.ndarray:
    """Hashed bag of words: texts sharing words point the same way (deterministic, no model)."""
    out = np.full((len(texts), 64), 1e-3, dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.lower().split():
            out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1
    return out


class Encoder:
    """lmeb's Encoder protocol without config(): counts the texts it encodes."""

    similarity = "cosine"

    def __init__(self) -> None:
        self.encoded = 0

    @property
    def stats(self):  # counters the engine records per subset as model_counts (an API encoder's requests...)
        return {"texts": self.encoded}

    def encode(self, texts, kind="query", instruction=None):
        self.encoded += len(texts)
        return bag_of_words([f"{instruction} {t}" if instruction and kind == "query" else t for t in texts])


class Overlap:
    """A Reranker: score = words shared by query and passage."""

    def __init__(self) -> None:
        self.stats = {"pairs": 0}

    def score(self, pairs, instruction=None):
        self.stats["pairs"] += len(pairs)
        return np.array([len(set(q.lower().split()) & set(d.lower().split())) for q, d in pairs], dtype=float)


def test_import_lmeb_is_light():
    code = "import sys, lmeb; print(sorted(m for m in ('numpy', 'torch', 'pandas', 'lmeb.api') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert {"evaluate", "Results", "load_results", "Encoder", "Searcher", "Reranker"} <= set(lmeb.__all__)


@pytest.mark.slow
def test_custom_object_in_memory_then_saved_equals_output_written_as_it_goes(sample_data, tmp_path, capsys):
    enc = Encoder()
    res = lmeb.evaluate(enc, tasks=TASK, data=sample_data, name="bow", cache_dir=None)
    assert res[0].subsets["gorilla_tensor"].provenance["model_counts"] == {"model": {"texts": enc.encoded}}
    assert isinstance(res, lmeb.Results) and res.name == "bow" and len(res) == 1
    sub = res[0].subsets["gorilla_tensor"]
    assert 0 < sub.scores["ndcg_at_10"] <= 1 and len(sub.query_ids) == len(sub.per_query["ndcg_at_10"]) > 0
    long = res.scores
    assert set(long.columns) == {"model", "setting", "memory_type", "dataset", "subset", "metric", "value"}
    assert long.query("metric == 'ndcg_at_10'")["value"].tolist() == [sub.scores["ndcg_at_10"]]
    per_query = res.per_query("ndcg_at_10")
    assert per_query["value"].mean() == pytest.approx(sub.scores["ndcg_at_10"], abs=1e-5)
    view = res.table("subsets", dataset="Gorilla")  # one of Gorilla's three subsets: the dataset is incomplete
    assert view.loc[("bow", "wo_inst", "run")].dropna().tolist() == [100 * sub.scores["ndcg_at_10"]]
    assert res.table().shape[0] == 1  # the paper view: one row per model and setting

    saved = res.save(tmp_path / "saved")
    written = lmeb.evaluate(Encoder(), tasks=TASK, data=sample_data, name="bow", cache_dir=None,
                            output=tmp_path / "live")
    assert saved == [tmp_path / "saved" / "bow" / "wo_inst" / "Gorilla.json"]
    live = tmp_path / "live" / "bow" / "wo_inst" / "Gorilla.json"

    def numbers(path):
        obj = json.loads(path.read_text())
        return [{k: v for k, v in s.items() if k != "evaluation_time"} for s in obj["scores"]["test"]]

    assert numbers(saved[0]) == numbers(live)
    again = lmeb.load_results(tmp_path / "saved", per_query=True)
    assert again[0].subsets["gorilla_tensor"].per_query == sub.per_query
    assert written[0].subsets["gorilla_tensor"].scores == sub.scores


def test_without_config_or_name_the_cache_and_resume_are_off(sample_data, tmp_path, capsys):
    cache, out = tmp_path / "cache", tmp_path / "out"
    enc = Encoder()
    lmeb.evaluate(enc, tasks=TASK, data=sample_data, cache_dir=cache, output=out)
    err = capsys.readouterr().err
    assert "warning: Encoder has no config() and no name= was given, so the embedding cache and resume are off" in err
    assert not cache.exists() and enc.encoded > 0
    again = Encoder()
    lmeb.evaluate(again, tasks=TASK, data=sample_data, cache_dir=cache, output=out)
    assert again.encoded == enc.encoded  # nothing reused: a changed object would not be noticed otherwise
    capsys.readouterr()

    named = Encoder()
    lmeb.evaluate(named, tasks=TASK, data=sample_data, cache_dir=cache, name="bow", revision="v1")
    cached = Encoder()
    res = lmeb.evaluate(cached, tasks=TASK, data=sample_data, cache_dir=cache, name="bow", revision="v1")
    assert named.encoded > 0 and cached.encoded == 0  # keyed by name and revision: served from the disk cache
    assert res[0].subsets["gorilla_tensor"].provenance["model_counts"] == {"model": {"texts": 0}}  # all cached
    assert res[0].provenance["model_config"] == {"class": "test_api.Encoder", "name": "bow", "revision": "v1"}
    assert "warning" not in capsys.readouterr().err


def test_plain_callable_equals_the_same_encoder_object(sample_data):
    by_fn = lmeb.evaluate(bag_of_words, tasks=TASK, data=sample_data, cache_dir=None)
    assert by_fn.name == "bag_of_words"

    class Same:
        similarity = "cosine"

        def encode(self, texts, kind, instruction):
            return bag_of_words(texts)

        def config(self):
            return {"class": "Same"}

    by_obj = lmeb.evaluate(Same(), tasks=TASK, data=sample_data, cache_dir=None)
    assert by_fn[0].subsets["gorilla_tensor"].scores == by_obj[0].subsets["gorilla_tensor"].scores


def test_a_model_without_stats_has_no_counts_line(sample_data):
    """A plain callable keeps no counters: nothing in the provenance, Results or the run summary."""
    import io

    from lmeb.cli.run import print_summary

    res = lmeb.evaluate(bag_of_words, tasks=TASK, data=sample_data, cache_dir=None)
    assert res[0].subsets["gorilla_tensor"].provenance["model_counts"] is None
    assert res.summaries[0].model_counts == {} and res.model_counts().empty
    assert list(res.model_counts().columns) == ["model", "setting", "dataset", "subset", "role", "counter", "value"]
    out = io.StringIO()
    print_summary(res.summaries, str(res.name), "wo_inst", 1.0, file=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "bag_of_words (wo_inst)" and lines[-1].startswith("1 dataset in 1.0s")
    assert "counts" not in out.getvalue()


def test_reranker_object_as_model_and_second_stage(sample_data):
    alone = lmeb.evaluate(Overlap(), tasks="LoCoMo/single_hop", data=sample_data, name="overlap")
    meta = alone[0].provenance
    assert meta["model_kind"] == "reranker" and alone[0].subsets["single_hop"].scores["ndcg_at_10"] > 0
    second = Overlap()
    res = lmeb.evaluate("bm25", tasks="LoCoMo/single_hop", data=sample_data, reranker=second,
                        options=EvalOptions(rerank_top_k=3),
                        cache_dir=None)
    assert res.name == "bm25+rerank+Overlap" and res[0].provenance["rerank_top_k"] == 3
    counts = res[0].subsets["single_hop"].provenance["model_counts"]
    assert counts["reranker"]["pairs"] == second.stats["pairs"] > 0 and "corpora_indexed" in counts["model"]


@pytest.mark.slow
def test_sentence_transformer_instance_equals_the_spec(sample_data, minilm_path):
    from sentence_transformers import SentenceTransformer

    by_spec = lmeb.evaluate(str(minilm_path), tasks=TASK, data=sample_data, cache_dir=None,
                            model_options={"device": "cpu"})
    instance = SentenceTransformer(str(minilm_path), device="cpu")
    by_instance = lmeb.evaluate(instance, tasks=TASK, data=sample_data, cache_dir=None, name="minilm")
    assert by_instance[0].subsets["gorilla_tensor"].scores == by_spec[0].subsets["gorilla_tensor"].scores


def test_wrong_objects_get_one_clear_error(sample_data):
    with pytest.raises(LmebError, match=r"^object is not a model: it has no method encode\(texts, kind, instruction"):
        lmeb.evaluate(object(), tasks=TASK, data=sample_data)

    class TextsOnly:
        def encode(self, texts):
            return bag_of_words(texts)

    with pytest.raises(LmebError, match=r"^TextsOnly.encode must take \(texts, kind, instruction\); it has no kind"):
        lmeb.evaluate(TextsOnly(), tasks=TASK, data=sample_data)
    with pytest.raises(LmebError, match=r"^Encoder is not a reranker: it has no method score\(pairs, instruction\)"):
        lmeb.evaluate("bm25", tasks=TASK, data=sample_data, reranker=Encoder())

    class ConfiguredEncoder(Encoder):  # an object describing itself is checked for its role too
        def config(self):
            return {"class": "ConfiguredEncoder"}

    with pytest.raises(LmebError, match=r"^ConfiguredEncoder is not a reranker: it has no method score\(pairs"):
        lmeb.evaluate("bm25", tasks=TASK, data=sample_data, reranker=ConfiguredEncoder())


@pytest.mark.slow
def test_cross_encoder_instance_is_a_reranker(sample_data, minilm_path):
    import torch
    from sentence_transformers import CrossEncoder

    from lmeb.models.objects import wrap_model

    torch.manual_seed(0)  # MiniLM has no scoring head: a fresh one, fixed by the seed
    ce = CrossEncoder(str(minilm_path), num_labels=1, device="cpu")
    wrapped = wrap_model(ce, role="reranker")
    pairs = [("apple pie", "a recipe for apple pie"), ("apple pie", "tax law")]
    assert wrapped.anonymous and wrapped.model.score(pairs).tolist() == pytest.approx(ce.predict(pairs).tolist())
    res = lmeb.evaluate("bm25", tasks="LoCoMo/single_hop", data=sample_data, reranker=ce,
                        options=EvalOptions(rerank_top_k=2),
                        cache_dir=None)
    assert res[0].provenance["reranker_config"]["class"].endswith(".CrossEncoder")
    assert res[0].subsets["single_hop"].provenance["seconds"]["rerank"] > 0
