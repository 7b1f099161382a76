"""Third-party model prefixes: a package declaring an ``lmeb.models`` entry point runs from the CLI and from
``lmeb.evaluate``; a plugin that fails to import or loads no model is one line naming it."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lmeb.errors import LmebError

REPO = Path(__file__).resolve().parents[1]

PLUGIN = '''
"""A toy lmeb model plugin: a bag-of-words encoder (hashed word counts, so dot products are exact)."""
import zlib

import numpy as np


class BagOfWords:
    similarity = "dot"

    def __init__(self, dim, tag):
        self.dim, self.name, self.tag = dim, "toy-" + tag, tag

    def encode(self, texts, kind="query", instruction=None):
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                vectors[i, zlib.crc32(word.encode()) % self.dim] += 1
        return vectors

    def config(self):
        return {"class": "toy_plugin.BagOfWords", "dim": self.dim, "tag": self.tag}


def load(rest, options):
    LOADED.append((rest, dict(options)))
    return BagOfWords(int(options.get("dimensions") or 64), rest)


def not_a_model(rest, options):
    return {"not": "a model"}


LOADED = []
'''

ENTRY_POINTS = """\
[lmeb.models]
toy = toy_plugin:load
notamodel = toy_plugin:not_a_model
broken = toy_plugin_missing:load
"""


def write_plugin(folder: Path) -> Path:
    """``toy_plugin`` as an installed distribution would leave it: the module and its ``.dist-info``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "toy_plugin.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    info = folder / "toy_plugin-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(ENTRY_POINTS, encoding="utf-8")
    return folder


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = write_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()
    yield folder
    sys.modules.pop("toy_plugin", None)


def test_a_plugin_prefix_loads_a_model_with_the_rest_and_the_options(plugin: Path) -> None:
    from lmeb.models.registry import load_model, model_prefixes

    model = load_model("toy:anything", dimensions=32, pooling=None, cache=None)
    assert model.name == "toy-anything" and model.dim == 32
    assert model.encode(["a b a"]).tolist()[0].count(0.0) == 30  # two distinct words hashed
    import toy_plugin

    assert toy_plugin.LOADED == [("anything", {"setting": "wo_inst", "dimensions": 32})]  # None options dropped
    assert model_prefixes()[:2] == ["preset", "hf"] and {"toy", "broken", "notamodel"} <= set(model_prefixes())


def test_evaluate_runs_a_plugin_model(plugin: Path, sample_data: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import lmeb

    monkeypatch.setenv("LMEB_CACHE", str(tmp_path / "cache"))
    results = lmeb.evaluate("toy:anything", tasks="LoCoMo", data=sample_data)
    assert [(r.model, r.task_name) for r in results] == [("anything", "LoCoMo")]
    ndcg = results.scores.query("metric == 'ndcg_at_10'")["value"]
    assert len(ndcg) == len(results[0].subsets) > 0 and ndcg.between(0, 1).all() and ndcg.gt(0).any()


@pytest.mark.parametrize(("spec", "message"), [
    ("broken:x", r"^model plugin 'broken' \(toy_plugin_missing:load\) failed to import: ModuleNotFoundError"),
    ("notamodel:x", r"^model plugin 'notamodel' \(toy_plugin:not_a_model\) returned a dict, not an Encoder, "
                    r"Searcher or Reranker"),
    ("nosuch:x", r"^unknown model prefix 'nosuch': use one of preset, hf, .*toy.*, or install a package"),
])
def test_a_bad_plugin_is_one_line_naming_it(plugin: Path, spec: str, message: str) -> None:
    from lmeb.models.registry import load_model

    with pytest.raises(LmebError, match=message) as caught:
        load_model(spec)
    assert "\n" not in str(caught.value)


def test_a_reranker_slot_refuses_a_plugin_encoder(plugin: Path) -> None:
    from lmeb.models.registry import load_reranker

    with pytest.raises(LmebError, match=r"^'toy:x' is not a reranker: it has no method score"):
        load_reranker("toy:x")


def test_lmeb_run_with_a_plugin_prefix(tmp_path: Path, sample_data: Path) -> None:
    """The real entry point in a fresh interpreter: the plugin is found through PYTHONPATH alone."""
    folder = write_plugin(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)])}
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "lmeb", "run", "--model", "toy:anything", "--tasks", "LoCoMo",
                           "--data", str(sample_data), "--output", str(out), "--no-cache", "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    written = json.loads((out / "anything" / "wo_inst" / "LoCoMo.json").read_text(encoding="utf-8"))
    assert "toy_plugin.BagOfWords" in json.dumps(written)
    help_text = subprocess.run([sys.executable, "-m", "lmeb", "run", "--help"], capture_output=True, text=True,
                               env=env, timeout=60).stdout
    model_help = help_text.split("  --model MODEL")[1].split("  --name")[0]
    assert "hybrid, broken, notamodel, toy" in " ".join(model_help.split())  # built-ins, then the plugins


def test_the_running_guide_names_every_built_in_prefix() -> None:
    from lmeb.models.registry import _LOADERS  # the built-in table itself

    guide = (REPO / "docs" / "guide" / "running.md").read_text(encoding="utf-8")
    built_in = [p for p in _LOADERS if p != "mine"]  # mine: the guide's own example, registered while it runs
    assert {"hf", "st", "hybrid"} <= set(built_in) and [p for p in built_in if f"`{p}:" not in guide] == []
