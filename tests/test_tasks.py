"""The task registry: totals, lookups, selections, scene rules, and YAML errors that name file and field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lmeb.cli import main as cli
from lmeb.errors import LmebError
from lmeb.tasks.registry import TASKS_DIR, all_tasks, get_task, get_tasks, load_task_file, select

TOTALS = {"Episodic": (2, 69), "Dialogue": (6, 42), "Semantic": (8, 15), "Procedural": (6, 67)}


def test_registry_totals() -> None:
    tasks = all_tasks()
    assert (len(tasks), sum(len(t.subsets) for t in tasks)) == (22, 193)
    for memory_type, expected in TOTALS.items():
        group = get_tasks(memory_types=[memory_type.lower()])
        assert (len(group), sum(len(t.subsets) for t in group)) == expected
    assert [t.paper_position for t in tasks] == sorted(t.paper_position for t in tasks)


def test_lookup_by_name_mteb_name_and_case() -> None:
    assert get_task("locomo").name == "LoCoMo"
    assert get_task("CovidQA").path == "Semantic/Covid-QA"
    epbench = get_task("EPBench")
    assert epbench.subset("default_claude_long__Entities").name == "default_claude_long/Entities"
    with pytest.raises(LmebError, match=r"unknown dataset 'Locomoo'; did you mean LoCoMo\?"):
        get_task("Locomoo")
    with pytest.raises(LmebError, match="did you mean single_hop"):
        get_task("LoCoMo").subset("single_hopp")
    with pytest.raises(LmebError, match="did you mean Dialogue"):
        get_tasks(memory_types=["dialog"])


def test_select_parses_datasets_and_subsets() -> None:
    sel = select("Gorilla/gorilla_tensor,LoCoMo,EPBench/default_claude_long__Times,Gorilla/gorilla_pytorch")
    assert [(s.task.name, s.subsets) for s in sel] == [
        ("EPBench", ("default_claude_long/Times",)),
        ("LoCoMo", tuple(get_task("LoCoMo").subset_names)),
        ("Gorilla", ("gorilla_pytorch", "gorilla_tensor")),
    ]
    assert select("LoCoMo/single_hop,LoCoMo") == select("LoCoMo")  # a whole dataset wins over one subset
    assert [s.task.name for s in select(None, ["Semantic"])][:2] == ["QASPER", "NovelQA"]
    assert sum(len(s.subsets) for s in select()) == 193


def test_scene_rules_and_instructions() -> None:
    locomo, qasper, gorilla = get_task("LoCoMo"), get_task("QASPER"), get_task("Gorilla")
    assert locomo.scene_of("locomo_conv-26_q82") == "locomo_conv-26"
    assert qasper.scene_of("a_b_c") == "a_b_c"
    assert gorilla.scene_of("x_y_z") == "x_y_z"
    assert locomo.instruction("single_hop") == "Given a query, retrieve documents that answer the query"


def _copy(tmp_path: Path, name: str = "LoCoMo") -> tuple[Path, dict]:
    """A writable copy of one registry file under tmp_path/<type>/, and its parsed YAML."""
    import yaml

    src = get_task(name).source
    folder = tmp_path / Path(src).parent.name
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / Path(src).name
    shutil.copy(src, dst)
    return dst, yaml.safe_load(dst.read_text())


def _write(path: Path, doc: dict) -> None:
    import yaml

    path.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("main_score"), "missing field 'main_score'"),
        (lambda d: d["data"].pop("layout"), "missing field 'data.layout'"),
        (lambda d: d["subsets"][1].pop("instruction"), r"missing field 'subsets\[1\].instruction'"),
        (lambda d: d["data"].update(layout="nested"), "field 'data.layout' is 'nested', expected one of"),
        (lambda d: d.update(official_k_values=[0, 5]), "field 'official_k_values' must be a list of positive"),
        (lambda d: d.update(memory_type="Semantic"), "memory_type Semantic does not match folder dialogue/"),
        (lambda d: d["data"].update(candidates=None), "'data.candidates' and 'data.scene_id' must both be set"),
        (lambda d: d.update(granularty="Turn"), "unknown field 'granularty'; did you mean granularity"),
        (lambda d: d["subsets"].append(dict(d["subsets"][0])), "field 'subsets' has duplicate names"),
        (lambda d: d.update(subsets=[]), "field 'subsets' is empty"),
        (lambda d: d["mteb"].update(name=3), r"field 'mteb.name' has the wrong type \(int\)"),
    ],
)
def test_yaml_errors_name_file_and_field(tmp_path: Path, mutate, message: str) -> None:
    path, doc = _copy(tmp_path)
    assert load_task_file(path).name == "LoCoMo"  # the copy itself is valid
    mutate(doc)
    _write(path, doc)
    with pytest.raises(LmebError, match=f"^{path}: .*{message}"):
        load_task_file(path)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path, _ = _copy(tmp_path)
    lines = path.read_text().splitlines()
    lines[5] = "license: [unclosed"
    path.write_text("\n".join(lines))
    with pytest.raises(LmebError, match=rf"^{path}:\d+: invalid YAML"):
        load_task_file(path)


def test_duplicate_dataset_across_files(tmp_path: Path) -> None:
    path, doc = _copy(tmp_path)
    _write(path.with_name("Other.yaml"), doc)
    with pytest.raises(LmebError, match="dataset LoCoMo is already defined in"):
        all_tasks(tmp_path)
    assert len(all_tasks(TASKS_DIR)) == 22


def test_cli_tasks_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["tasks", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 22 and sum(len(r["subsets"]) for r in records) == 193
    locomo = next(r for r in records if r["name"] == "LoCoMo")
    assert locomo["layout"] == "corpus_at_dataset_root" and locomo["candidates"] == "dataset_root"
    assert set(locomo["subsets"][0]) == {"name", "mteb_name", "instruction"}


def test_cli_tasks_table_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["tasks", "--type", "Procedural"]) == 0
    out = capsys.readouterr().out
    assert "Procedural: 6 datasets, 67 tasks" in out and "LoCoMo" not in out
    assert cli(["tasks"]) == 0
    assert "all: 22 datasets, 193 tasks" in capsys.readouterr().out
    assert cli(["tasks", "--dataset", "Gorila"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "lmeb tasks: error: unknown dataset 'Gorila'; did you mean Gorilla?"


def test_registry_agrees_with_the_spec(shared_dir: Path) -> None:
    spec = json.loads((shared_dir / "lmeb_spec" / "datasets.json").read_text())["datasets"]
    assert [d["name"] for d in spec] == [t.name for t in all_tasks()]
    for ds in spec:
        task = get_task(ds["name"])
        assert (task.path, task.layout, task.candidates, task.scene_id) == (
            ds["path"], ds["layout"], ds["candidates"], ds["scene_id"])  # fmt: skip
        assert task.subset_names == ds["subsets"]
