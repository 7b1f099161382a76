"""mteb:<model name>: loaded offline by mteb.get_model from a local hub cache at the revision mteb pins,
encoded with mteb's inputs and prompt rules per task; scores equal lmeb's sentence-transformers path."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from lmeb.cli import main as cli
from lmeb.errors import LmebError
from tests.conftest import REAL_DATA, assert_same_scores

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def mteb() -> ModuleType:
    """mteb, imported by the tests that use it (its import takes seconds: collection does not pay it)."""
    return pytest.importorskip("mteb")


@pytest.fixture(scope="module")
def hub_cache(mteb: ModuleType, minilm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub cache holding the packaged MiniLM at the revision mteb's ModelMeta pins."""
    revision = mteb.get_model_meta(MODEL).revision
    root = tmp_path_factory.mktemp("hub")
    repo = root / ("models--" + MODEL.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    for path in minilm_path.rglob("*"):
        if path.is_file():
            target = snapshot / path.relative_to(minilm_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision, encoding="utf-8")
    return root


@pytest.fixture
def offline_hub(hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The hub cache above as the one huggingface_hub reads (offline)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return hub_cache


@pytest.mark.slow
def test_mteb_model_scores_equal_sentence_transformers(mteb: ModuleType, offline_hub: Path, minilm_path: Path,
                                                       sample_data: Path, tmp_path: Path) -> None:
    data, tasks = (REAL_DATA, "Gorilla/gorilla_pytorch") if REAL_DATA.is_dir() else (sample_data, "Gorilla")
    common = ["--tasks", tasks, "--data", str(data), "--output", str(tmp_path / "res"), "--no-progress",
              "--cache-dir", str(tmp_path / "cache")]
    assert cli(["run", "--model", f"mteb:{MODEL}", "--name", "via-mteb", *common]) == 0
    assert cli(["run", "--model", str(minilm_path), "--name", "local", *common]) == 0

    via_mteb, _ = assert_same_scores(tmp_path / "res" / "via-mteb" / "wo_inst" / "Gorilla.json",
                                     tmp_path / "res" / "local" / "wo_inst" / "Gorilla.json", 1e-6)
    config = via_mteb.provenance["model_config"]
    assert config["class"] == "MtebEncoder" and config["revision"] == mteb.get_model_meta(MODEL).revision


@pytest.mark.slow
def test_task_encoders_key_the_cache_by_task(mteb: ModuleType, offline_hub: Path) -> None:
    """Each LMEB subset gets the encoder of its mteb task: real TaskMetadata, the mteb subset name."""
    from lmeb.models.registry import load_model
    from lmeb.tasks.registry import get_task

    encoder = load_model(f"mteb:{MODEL}", device="cpu")
    with pytest.raises(LmebError, match="call for_task"):
        encoder.encode(["a text"], "query")
    gorilla, locomo = get_task("Gorilla"), get_task("LoCoMo")
    bound = encoder.for_task(gorilla, gorilla.subsets[0].name)
    assert bound.metadata is mteb.get_task(gorilla.mteb_name).metadata
    assert bound.hf_subset == gorilla.subsets[0].mteb_name
    other = encoder.for_task(locomo, locomo.subsets[0].name)
    assert bound.config() != other.config() and bound.config()["mteb_task"] == gorilla.mteb_name
    plain, instructed = bound.encode(["how do I load a model"], "query"), bound.encode(
        ["how do I load a model"], "query", "Retrieve the API")
    assert plain.shape == (1, 384) and (plain == instructed).all()  # a plain ST model reads no instruction
    with pytest.raises(LmebError, match="mteb: cannot find model"):
        load_model("mteb:no-such-org/no-such-model")
