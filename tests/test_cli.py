"""One CLI convention: the selection options (--tasks/--type/--all) mean the same in every command, help
texts are whole, every option is documented in the README, and presets are listed with their aliases."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lmeb.cli import COMMANDS, build_parser, describe
from lmeb.cli import main as cli
from lmeb.tasks.registry import select

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
SPEC = REPO / "lmeb" / "spec"  # the packaged copy of ../shared/lmeb_spec


def _subcommands() -> dict:
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return dict(action.choices)


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- selection: --tasks / --type / --all ----------------------------------------------------------------


def test_type_is_repeatable_and_takes_the_comma_form_in_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--type", "Dialogue", "--type", "semantic"], ["--type", "Dialogue,Semantic"],
                 ["--type", "dialogue", "--type", "Semantic,Dialogue"]):
        assert cli(["tasks", *argv, "--json"]) == 0
        types = {r["memory_type"] for r in _json_lines(capsys.readouterr().out)}
        assert types == {"Dialogue", "Semantic"}, argv


def test_tasks_repeatable_and_subsets_match_any_case(capsys: pytest.CaptureFixture[str]) -> None:
    assert select("gorilla/Gorilla_Tensor")[0].subsets == ("gorilla_tensor",)
    assert select(["LOCOMO/Single_Hop", "epbench/DEFAULT_CLAUDE_LONG/times"])[1].subsets == ("single_hop",)
    assert cli(["tasks", "--tasks", "gorilla/GORILLA_TENSOR", "--tasks", "LoCoMo", "--json"]) == 0
    records = {r["name"]: r for r in _json_lines(capsys.readouterr().out)}
    assert [s["name"] for s in records["Gorilla"]["subsets"]] == ["gorilla_tensor"]
    assert len(records["LoCoMo"]["subsets"]) == 5
    assert cli(["tasks", "--dataset", "Gorilla/gorilla_tensor"]) == 0  # --dataset: the old spelling
    out = capsys.readouterr().out
    assert re.search(r"^Gorilla\s+Procedural\s+Tool\s+1/3\s", out, re.M) and "all: 1 dataset, 1 task" in out


def test_tasks_of_another_type_is_an_error_not_an_empty_selection(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["tasks", "--tasks", "LoCoMo", "--type", "Semantic"]) == 2
    assert capsys.readouterr().err.strip() == "lmeb tasks: error: none of LoCoMo is of memory type Semantic"


def test_type_repeatable_in_validate_and_stats(sample_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["validate", "--data", str(sample_data), "--type", "Episodic", "--type", "procedural"]) == 0
    out = capsys.readouterr().out
    assert "total: 8 datasets checked (136 subsets), 0 skipped" in out
    assert cli(["stats", "--data", str(sample_data), "--type", "Episodic,Procedural", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert set(stats) == {"EPBench", "KnowMeBench", "Gorilla", "ToolBench", "ReMe", "Proced_mem_bench",
                          "MemGovern", "DeepPlanning"}


def test_all_means_all_datasets_and_all_warnings_is_its_own_option(
    sample_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["validate", "--data", str(sample_data)]
    assert cli([*data, "--tasks", "MemBench"]) == 0
    out = capsys.readouterr().out
    assert out.count("warning: /") == 5 and "5 more scene_without_candidates warnings (--all-warnings" in out
    assert cli([*data, "--tasks", "MemBench", "--all-warnings"]) == 0
    assert capsys.readouterr().out.count("warning: /") == 10
    assert cli([*data, "--all"]) == 0  # all datasets, with a hint for who meant "all warnings"
    out = capsys.readouterr().out
    assert "total: 22 datasets checked (193 subsets)" in out
    assert "note: --all selects all datasets; --all-warnings prints every warning" in out
    with pytest.raises(SystemExit):
        cli([*data, "--all", "--tasks", "LoCoMo"])
    assert "not allowed with argument --all" in capsys.readouterr().err


# --- help texts and the README --------------------------------------------------------------------------


def test_every_command_help_is_whole(capsys: pytest.CaptureFixture[str]) -> None:
    """The description is the module docstring entire (the old one stopped at its first line break)."""
    import importlib

    for name, (module, _) in COMMANDS.items():
        with pytest.raises(SystemExit) as exit_info:
            cli([name, "--help"])
        assert exit_info.value.code == 0
        out = " ".join(capsys.readouterr().out.split())
        doc = " ".join(describe(importlib.import_module(module).__doc__).split())
        assert doc in out, name
        assert doc.endswith((".", ":")) or doc.rstrip().endswith("..."), name


def test_every_option_has_help_and_is_documented() -> None:
    """Every command and option is in the README or a docs/ page (the prose, not only the generated reference)."""
    docs = "\n".join([README, *(p.read_text(encoding="utf-8") for p in sorted((REPO / "docs").rglob("*.md")))])
    for name, parser in _subcommands().items():
        assert f"lmeb {name}" in docs, f"`lmeb {name}` is not in the README or docs/"
        for action in parser._actions:
            if action.option_strings and "--help" not in action.option_strings:
                assert action.help, f"lmeb {name} {action.option_strings[0]} has no help"
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    assert re.search(re.escape(option) + r"(?![\w-])", docs), f"{name} {option} not documented"


@pytest.mark.slow
def test_help_through_the_real_entry_point() -> None:
    out = subprocess.run([sys.executable, "-m", "lmeb", "compare", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "wins/ties/losses over subsets." in " ".join(out.split())


# --- presets --------------------------------------------------------------------------------------------


def test_presets_json_lists_every_paper_row_as_a_name_or_alias() -> None:
    from lmeb.models.presets import find_preset, get_preset

    out = subprocess.run([sys.executable, "-m", "lmeb", "presets", "--json"], capture_output=True, text=True,
                         check=True).stdout
    records = _json_lines(out)
    configs = json.loads((SPEC / "paper_model_configs.json").read_text())["models"]
    assert [r["name"] for r in records] == list(configs)
    paper = json.loads((SPEC / "paper_table2_table3.json").read_text())["settings"]
    rows = {r["model"] for setting in paper.values() for r in setting}
    assert {r["paper_name"] for r in records} == rows  # one preset per published row, and back
    for record in records:
        assert record["hub_id"] and set(record["settings"]) == {"wo_inst", "w_inst"}
        wo = record["settings"]["wo_inst"]
        assert wo["official"] == configs[record["name"]]["wo_inst"]
        assert wo["encoder_options"]["max_length"] == configs[record["name"]]["wo_inst"]["max_length"]
    for row in rows:
        assert get_preset(row).paper_name == row
    assert get_preset("KaLM-Embedding-V2.5").name == "KaLM_Embedding_V2.5"
    assert get_preset("BGE-M3 (dense)").name == "bge-m3"
    assert get_preset("jina-v5-text-small").hub_id == "jinaai/jina-embeddings-v5-text-small-retrieval"
    assert get_preset("kalm_embedding_v1").name == "KaLM_Embedding_V1.5"
    assert find_preset("BAAI/bge-m3", hub_ids=False) is None and find_preset("BAAI/bge-m3").name == "bge-m3"
    from lmeb.report.paper import paper_model  # and back: lmeb diff takes a preset's name or hub id for its row

    assert paper_model("KaLM_Embedding_V2.5", "wo_inst").model == "KaLM-Embedding-V2.5"
    assert paper_model("BAAI/bge-m3", "w_inst").model == "bge-m3 (Dense)"


def test_presets_text_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["presets"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:4] == ["preset", "paper", "name", "hub"]
    assert re.search(r"^bge-m3\s+bge-m3 \(Dense\)\s+BAAI/bge-m3\s+first\s+yes\s+1024\s+fp16\s+right\s+256/128$",
                     out, re.M)
    assert "15 presets" in out


def test_preset_alias_through_run_reaches_the_official_settings(tmp_path: Path) -> None:
    """`--preset 'bge-m3 (Dense)'` resolves (the error is about the missing weights, not the name)."""
    from lmeb.errors import LmebError
    from lmeb.models.registry import load_model

    with pytest.raises(LmebError) as info:
        load_model(preset="bge-m3 (Dense)", model_path=str(tmp_path / "nowhere"))
    assert "unknown preset" not in str(info.value)
    with pytest.raises(LmebError, match=r"unknown preset 'bge-m4'; did you mean bge-m3\?"):
        load_model(preset="bge-m4")
