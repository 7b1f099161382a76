"""mteb export: the results-repository layout, mteb task and subset names, TaskResult fields, model_meta.json."""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

import pytest

from lmeb.cli import main as cli
from lmeb.errors import LmebError
from lmeb.report.export import export_mteb
from lmeb.results.collection import load_results
from lmeb.tasks.registry import get_task


def _mteb_task_result() -> Path | None:
    """mteb's ``results/task_result.py`` in the installed mteb package (no import: mteb pulls in a lot)."""
    spec = importlib.util.find_spec("mteb")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "results" / "task_result.py"
    return path if path.is_file() else None


MTEB_TASK_RESULT = _mteb_task_result()
TASK_RESULT_FIELDS = {"dataset_revision", "task_name", "mteb_version", "scores", "evaluation_time",
                      "kg_co2_emissions", "date", "evaluation_phases"}


@pytest.fixture(scope="session")
def write(write_results):
    """Results of ``datasets`` (their first ``subsets_of`` subsets), with a sentence-transformers provenance."""

    def write_(root: Path, model: str, datasets: list[str], setting: str = "wo_inst", revision: str | None = "abc123",
               subsets_of: int | None = None) -> None:
        def scores(task, i, name):
            v = 0.1 + 0.01 * i
            return {"ndcg_at_10": v, "R_cap_at_10": 0.123456789, "map_at_10": v / 2}

        prov = {"model_config": {"class": "SentenceTransformerEncoder", "revision": revision, "similarity": "cosine",
                                 "max_length": 256}, "model_kind": "encoder", "similarity": "cosine"}
        write_results(root, model, setting, datasets=datasets, scores=scores, provenance=prov, eval_time=1.5,
                      subsets=lambda t: t.subset_names[:subsets_of])

    return write_


@pytest.fixture
def results(tmp_path: Path, write) -> Path:
    root = tmp_path / "results"
    write(root, "sentence-transformers/all-MiniLM-L6-v2", ["MLDR", "Proced_mem_bench", "EPBench"], subsets_of=3)
    write(root, "my-model", ["LoCoMo"], revision=None)
    return root


def test_layout_names_and_fields(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "mteb"
    written = export_mteb(load_results([results]), out, org="myorg", allow_incomplete=True)  # EPBench: 3/54
    model_dir = out / "sentence-transformers__all-MiniLM-L6-v2" / "abc123"
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "EPBench.json", "LMEBMLDR.json", "ProceduralMemBench.json", "model_meta.json"]
    local = out / "myorg__my-model" / "no_revision_available"
    assert sorted(p.name for p in local.iterdir()) == ["LoCoMo.json", "model_meta.json"]
    assert len(written) == 6 and not list(out.rglob("*.tmp")) and not list(out.rglob(".*"))

    ep = json.loads((model_dir / "EPBench.json").read_text())
    assert set(ep) == TASK_RESULT_FIELDS | {"lmeb_data"}  # mteb's loaders ignore the extra object
    assert ep["task_name"] == "EPBench" and ep["dataset_revision"] == "lmeb-unverified-data-unknown"
    assert ep["lmeb_data"]["official_dataset_revision"] == get_task("EPBench").mteb_revision
    entries = ep["scores"]["test"]
    assert [e["hf_subset"] for e in entries] == ["default_claude_long__Entities", "default_claude_long__Event_contents",
                                                 "default_claude_long__Full_event_details"]
    first = entries[0]
    assert first["languages"] == ["eng-Latn"] and first["main_score"] == first["ndcg_at_10"] == 0.1
    assert first["R_cap_at_10"] == 0.123457  # rounded to 6 decimals like mteb's to_disk
    assert ep["evaluation_time"] == 4.5 and ep["kg_co2_emissions"] is None

    pm = json.loads((model_dir / "ProceduralMemBench.json").read_text())
    assert pm["task_name"] == "ProceduralMemBench" and [e["hf_subset"] for e in pm["scores"]["test"]] == [
        "easy", "medium", "hard"]
    assert json.loads((model_dir / "LMEBMLDR.json").read_text())["scores"]["test"][0]["hf_subset"] == "MLDR"

    meta = json.loads((model_dir / "model_meta.json").read_text())
    assert meta["name"] == "sentence-transformers/all-MiniLM-L6-v2" and meta["revision"] == "abc123"
    assert meta["similarity_fn_name"] == "cosine" and meta["framework"] == ["Sentence Transformers"]
    assert meta["use_instructions"] is False and meta["max_tokens"] == 256
    assert json.loads((local / "model_meta.json").read_text())["name"] == "myorg/my-model"


@pytest.mark.skipif(MTEB_TASK_RESULT is None, reason="mteb is not installed")
def test_fields_are_mteb_task_result_fields() -> None:
    """The exported top-level keys are exactly the fields of mteb's TaskResult model (read from its source)."""
    assert MTEB_TASK_RESULT is not None
    tree = ast.parse(MTEB_TASK_RESULT.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TaskResult")
    fields = {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    assert fields == TASK_RESULT_FIELDS


def test_revision_setting_and_cli(results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], write) -> None:
    out = tmp_path / "mteb"
    # EPBench has 3 of its 54 subsets: refused (mteb would read it as EPBench's score), nothing written
    assert cli(["export-mteb", str(results), str(out), "--revision", "r1"]) == 2
    err = capsys.readouterr().err
    assert "incomplete dataset(s)" in err and "EPBench 3/54 subsets (missing default_claude_long/Other_entities" in err
    assert "--allow-incomplete" in err and not out.exists()
    assert cli(["export-mteb", str(results), str(out), "--revision", "r1", "--allow-incomplete"]) == 0
    captured = capsys.readouterr()
    assert "wrote 4 task results and 2 model_meta.json" in captured.out
    assert "warning: exported an incomplete dataset: sentence-transformers/all-MiniLM-L6-v2 (wo_inst): EPBench 3/54" \
        in captured.err and "MLDR" not in captured.err
    assert (out / "my-model" / "r1" / "LoCoMo.json").is_file()
    assert (out / "sentence-transformers__all-MiniLM-L6-v2" / "r1" / "LMEBMLDR.json").is_file()

    write(results, "my-model", ["LoCoMo"], setting="w_inst", revision=None)
    with pytest.raises(LmebError, match="both settings"):
        export_mteb(load_results([results]), out)
    export_mteb(load_results([results]), tmp_path / "w", setting="w_inst")  # LoCoMo complete: no flag needed
    meta = json.loads((tmp_path / "w" / "my-model" / "no_revision_available" / "model_meta.json").read_text())
    assert meta["use_instructions"] is True
    assert cli(["export-mteb", str(tmp_path / "missing"), str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


def _bm25_results(root: Path, write_results, **subset_provenance) -> None:
    prov = {"model_kind": "searcher", "model_config": {"class": "BM25Searcher", "model": "bm25"},
            "data_fingerprint": "ab" * 32}
    write_results(root, "bm25", datasets=[subset_provenance.pop("dataset")], provenance=prov,
                  scores=lambda task, i, name: {"ndcg_at_10": 0.5}, subset_provenance=subset_provenance)


def test_data_status_decides_the_dataset_revision(tmp_path: Path, write_results,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Official revision only for data asserted official; a rebuilt superset is marked and refuses the assertion."""
    root, out = tmp_path / "results", tmp_path / "mteb"
    _bm25_results(root, write_results, dataset="Proced_mem_bench", documents=336)  # the published count
    _bm25_results(root, write_results, dataset="Gorilla", queries=911)  # the rebuilt superset
    assert cli(["export-mteb", str(root), str(out)]) == 0
    err = capsys.readouterr().err
    folder = out / "bm25" / "no_revision_available"
    pm = json.loads((folder / "ProceduralMemBench.json").read_text())
    assert pm["dataset_revision"] == "lmeb-unverified-data-abababababab"
    assert pm["lmeb_data"]["status"] == "unverified" and pm["lmeb_data"]["data_fingerprint"] == "ab" * 32
    gorilla = json.loads((folder / "Gorilla.json").read_text())
    assert gorilla["dataset_revision"] == "lmeb-differs-data-abababababab"
    assert gorilla["lmeb_data"]["differences"][0] == \
        "Gorilla/gorilla_huggingface: 911 queries, the official release has 500"
    assert "warning: bm25 (wo_inst) Gorilla: not the official data (Gorilla/gorilla_huggingface: 911" in err
    assert "note: 1 dataset result(s) from data lmeb cannot verify as the official release" in err

    assert cli(["export-mteb", str(root), str(tmp_path / "refused"), "--official-data"]) == 2
    assert "--official-data, but the results were not computed from the official data: Gorilla/" in \
        capsys.readouterr().err and not (tmp_path / "refused").exists()
    (root / "bm25" / "wo_inst" / "Gorilla.json").unlink()
    assert cli(["export-mteb", str(root), str(tmp_path / "ok"), "--official-data"]) == 0
    assert "note:" not in capsys.readouterr().err
    pm = json.loads((tmp_path / "ok" / "bm25" / "no_revision_available" / "ProceduralMemBench.json").read_text())
    assert pm["dataset_revision"] == get_task("Proced_mem_bench").mteb_revision
    assert pm["lmeb_data"]["status"] == "official"


def test_bm25_model_meta_is_sparse(tmp_path: Path, write_results) -> None:
    root = tmp_path / "results"
    _bm25_results(root, write_results, dataset="LoCoMo")
    export_mteb(load_results([root]), tmp_path / "mteb")
    meta = json.loads((tmp_path / "mteb" / "bm25" / "no_revision_available" / "model_meta.json").read_text())
    assert meta["model_type"] == ["sparse"] and meta["framework"] == [] and meta["n_parameters"] == 0
    assert meta["use_instructions"] is False and meta["similarity_fn_name"] is None
    assert meta["is_cross_encoder"] is False


@pytest.mark.slow
@pytest.mark.skipif(MTEB_TASK_RESULT is None, reason="mteb is not installed")
def test_mteb_reads_the_export(tmp_path: Path, write_results) -> None:
    """mteb's own loader reads an exported file, its revision and scores (and ignores lmeb_data)."""
    from mteb.results import TaskResult

    root = tmp_path / "results"
    _bm25_results(root, write_results, dataset="LoCoMo")
    export_mteb(load_results([root]), tmp_path / "mteb")
    loaded = TaskResult.from_disk(tmp_path / "mteb" / "bm25" / "no_revision_available" / "LoCoMo.json")
    assert loaded.task_name == "LoCoMo" and loaded.dataset_revision == "lmeb-unverified-data-abababababab"
    assert loaded.scores["test"][0]["main_score"] == 0.5
