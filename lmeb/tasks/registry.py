"""The task registry: one YAML file per dataset under ``tasks/<memory type>/``, loaded into typed values.

The YAML files are the source of truth (generated once by ``scripts/make_task_yaml.py`` from the
LMEB spec, then reviewed by hand). A malformed file fails with the file name and the field.
Where they are (``tasks_dir``): ``$LMEB_TASKS_DIR`` if set; in an installed wheel the package data
``lmeb/registry/`` (the repository's ``tasks/`` folder, shipped by setup.py); in a checkout ``tasks/``.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from lmeb.errors import LmebError

MEMORY_TYPES = ("Episodic", "Dialogue", "Semantic", "Procedural")
LAYOUTS = ("flat", "corpus_at_dataset_root", "corpus_at_scenario", "corpus_per_subset")
CANDIDATES = (None, "dataset_root", "subset")
SCENE_IDS = (None, "query_id", "first_two_underscore_fields_of_query_id")



def tasks_dir() -> Path:
    """The registry folder: ``$LMEB_TASKS_DIR``, else the wheel's ``lmeb/registry``, else the checkout's ``tasks/``."""
    override = os.environ.get("LMEB_TASKS_DIR")
    if override:
        return Path(override).expanduser()
    packaged = resources.files("lmeb").joinpath("registry")
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "tasks"


TASKS_DIR = tasks_dir()


@dataclass(frozen=True)
class Subset:
    """One retrieval task of LMEB: a subset of a dataset with its own queries and qrels."""

    name: str
    mteb_name: str
    instruction: str


@dataclass(frozen=True)
class Task:
    """One LMEB dataset: where its files are, how candidates and scenes work, and its subsets."""

    name: str
    memory_type: str
    granularity: str
    description: str = field(repr=False)
    reference: str = field(repr=False)
    license: str = field(repr=False)
    citation: str = field(repr=False)
    path: str
    layout: str
    candidates: str | None
    scene_id: str | None
    main_score: str
    official_k_values: tuple[int, ...]
    mteb_name: str
    mteb_hf_dataset: str
    mteb_revision: str
    mteb_k_values: tuple[int, ...]
    paper_table1: dict[str, Any] = field(hash=False, compare=False, repr=False)
    subsets: tuple[Subset, ...] = field(default=(), repr=False)
    paper_position: int = 0
    source: str = ""

    @property
    def subset_names(self) -> list[str]:
        return [s.name for s in self.subsets]

    def subset(self, name: str) -> Subset:
        """The subset called ``name`` (official or mteb spelling, any case); unknown names list close matches."""
        for s in self.subsets:
            if name in (s.name, s.mteb_name):
                return s
        for s in self.subsets:
            if name.lower() in (s.name.lower(), s.mteb_name.lower()):
                return s
        raise LmebError(f"unknown subset {name!r} of {self.name}{_did_you_mean(name, self.subset_names)}")

    def instruction(self, subset: str) -> str:
        return self.subset(subset).instruction

    def scene_of(self, query_id: str) -> str:
        """The scene a query belongs to, by the dataset's scene-id rule (see datasets.json notes)."""
        if self.scene_id == "first_two_underscore_fields_of_query_id":
            return "_".join(query_id.split("_")[:2])
        return query_id


def _did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)]
    return f"; did you mean {', '.join(close)}?" if close else ""


def _get(doc: dict, key: str, path: Path, kinds: type | tuple[type, ...], where: str = "") -> Any:
    full = f"{where}{key}"
    if not isinstance(doc, dict) or key not in doc:
        raise LmebError(f"{path}: missing field '{full}'")
    value = doc[key]
    if not isinstance(value, kinds):
        raise LmebError(f"{path}: field '{full}' has the wrong type ({type(value).__name__})")
    return value


def _choice(value: Any, allowed: tuple, path: Path, name: str) -> Any:
    if value not in allowed:
        raise LmebError(f"{path}: field '{name}' is {value!r}, expected one of {list(allowed)}")
    return value


def _k_values(value: Any, path: Path, name: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(k, int) and k > 0 for k in value):
        raise LmebError(f"{path}: field '{name}' must be a list of positive integers")
    return tuple(value)


_FIELDS = {
    "": {
        "name", "paper_position", "memory_type", "granularity", "description", "reference", "license", "data",
        "main_score", "official_k_values", "mteb", "paper_table1", "citation", "subsets",
    },
    "data.": {"path", "layout", "candidates", "scene_id"},
    "mteb.": {"name", "hf_dataset", "revision", "k_values"},
    "subsets[].": {"name", "mteb_name", "instruction"},
}  # fmt: skip


def _no_unknown(doc: dict, path: Path, where: str, allowed: set[str]) -> None:
    """A misspelt key would otherwise be ignored silently: name it."""
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise LmebError(f"{path}: unknown field '{where}{unknown[0]}'{_did_you_mean(unknown[0], sorted(allowed))}")


def parse_task(doc: Any, path: Path) -> Task:
    """Validate one YAML document into a Task; errors name the file and the field."""
    if not isinstance(doc, dict):
        raise LmebError(f"{path}: expected a mapping at the top level")
    _no_unknown(doc, path, "", _FIELDS[""])
    data = _get(doc, "data", path, dict)
    _no_unknown(data, path, "data.", _FIELDS["data."])
    mteb = _get(doc, "mteb", path, dict)
    _no_unknown(mteb, path, "mteb.", _FIELDS["mteb."])
    raw_subsets = _get(doc, "subsets", path, list)
    if not raw_subsets:
        raise LmebError(f"{path}: field 'subsets' is empty")
    subsets = []
    for i, s in enumerate(raw_subsets):
        where = f"subsets[{i}]."
        if isinstance(s, dict):
            _no_unknown(s, path, where, _FIELDS["subsets[]."])
        subsets.append(
            Subset(
                name=_get(s, "name", path, str, where),
                mteb_name=_get(s, "mteb_name", path, str, where),
                instruction=_get(s, "instruction", path, str, where),
            )
        )
    names = [s.name for s in subsets]
    if len(set(names)) != len(names):
        raise LmebError(f"{path}: field 'subsets' has duplicate names")
    layout = _choice(_get(data, "layout", path, str, "data."), LAYOUTS, path, "data.layout")
    if layout == "corpus_at_scenario" and not all("/" in n for n in names):
        raise LmebError(f"{path}: layout corpus_at_scenario needs subset names '<scenario>/<query_type>'")
    candidates = _choice(data.get("candidates"), CANDIDATES, path, "data.candidates")
    scene_id = _choice(data.get("scene_id"), SCENE_IDS, path, "data.scene_id")
    if (candidates is None) != (scene_id is None):
        raise LmebError(f"{path}: fields 'data.candidates' and 'data.scene_id' must both be set or both null")
    task = Task(
        name=_get(doc, "name", path, str),
        memory_type=_choice(_get(doc, "memory_type", path, str), MEMORY_TYPES, path, "memory_type"),
        granularity=_get(doc, "granularity", path, str),
        description=_get(doc, "description", path, str),
        reference=_get(doc, "reference", path, str),
        license=_get(doc, "license", path, str),
        citation=_get(doc, "citation", path, str),
        path=_get(data, "path", path, str, "data."),
        layout=layout,
        candidates=candidates,
        scene_id=scene_id,
        main_score=_get(doc, "main_score", path, str),
        official_k_values=_k_values(doc.get("official_k_values"), path, "official_k_values"),
        mteb_name=_get(mteb, "name", path, str, "mteb."),
        mteb_hf_dataset=_get(mteb, "hf_dataset", path, str, "mteb."),
        mteb_revision=str(_get(mteb, "revision", path, (str, int), "mteb.")),
        mteb_k_values=_k_values(mteb.get("k_values"), path, "mteb.k_values"),
        paper_table1=dict(_get(doc, "paper_table1", path, dict)),
        subsets=tuple(subsets),
        paper_position=_get(doc, "paper_position", path, int),
        source=str(path),
    )
    if path.parent.name.lower() != task.memory_type.lower():
        raise LmebError(f"{path}: memory_type {task.memory_type} does not match folder {path.parent.name}/")
    return task


def load_task_file(path: Path) -> Task:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise LmebError(f"{path}{line}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    return parse_task(doc, path)


@cache
def _registry(tasks_dir: Path) -> tuple[Task, ...]:
    files = sorted(tasks_dir.glob("*/*.yaml"))
    if not files:
        raise LmebError(f"{tasks_dir}: no task YAML files found (set LMEB_TASKS_DIR)")
    tasks = [load_task_file(f) for f in files]
    seen: dict[str, str] = {}
    for t in tasks:
        if t.name in seen:
            raise LmebError(f"{t.source}: dataset {t.name} is already defined in {seen[t.name]}")
        seen[t.name] = t.source
    return tuple(sorted(tasks, key=lambda t: (t.paper_position, t.name)))  # the paper's table order


def all_tasks(tasks_dir: Path | None = None) -> list[Task]:
    return list(_registry(Path(tasks_dir) if tasks_dir else TASKS_DIR))


def _match_type(value: str) -> str:
    for m in MEMORY_TYPES:
        if value.lower() == m.lower():
            return m
    raise LmebError(f"unknown memory type {value!r}{_did_you_mean(value.capitalize(), list(MEMORY_TYPES))}")


def get_task(name: str) -> Task:
    """The dataset called ``name`` (LMEB or mteb spelling, any case); unknown names list close matches."""
    tasks = all_tasks()
    for t in tasks:
        if name in (t.name, t.mteb_name):
            return t
    for t in tasks:
        if name.lower() in (t.name.lower(), t.mteb_name.lower()):
            return t
    raise LmebError(f"unknown dataset {name!r}{_did_you_mean(name, [t.name for t in tasks])}")


def get_tasks(names: list[str] | None = None, memory_types: list[str] | None = None) -> list[Task]:
    """Tasks by dataset name and/or memory type (both optional; none given = all 22)."""
    tasks = [get_task(n) for n in names] if names else all_tasks()
    if memory_types:
        wanted = {_match_type(m) for m in memory_types}
        tasks = [t for t in tasks if t.memory_type in wanted]
    return tasks


@dataclass(frozen=True)
class Selection:
    """A dataset and which of its subsets to run."""

    task: Task
    subsets: tuple[str, ...]


def select(spec: str | list[str] | None = None, memory_types: list[str] | None = None) -> list[Selection]:
    """Parse ``"LoCoMo,Gorilla/gorilla_tensor,EPBench/default_claude_long/Times"`` into selections.

    A bare dataset name selects all its subsets; ``Dataset/subset`` selects one (subset names may
    themselves contain '/'; both match any case); a list's items are such strings (``--tasks`` repeated).
    Order follows the registry; repeated names are merged.
    Datasets named here that are not of ``memory_types`` are an error, not an empty selection.
    """
    text = spec if isinstance(spec, str) else ",".join(spec or [])  # a list's items may hold commas too
    items = [s.strip() for s in text.split(",") if s.strip()]
    if spec and not items:  # ",," or [""]: not "everything"
        raise LmebError(f"the task selection {text!r} names no dataset; give e.g. LoCoMo,Gorilla/gorilla_tensor")
    chosen: dict[str, set[str] | None] = {}
    for item in items:
        name, _, sub = item.partition("/")
        task = get_task(name)
        if not sub:
            chosen[task.name] = None
        else:
            sub_name = task.subset(sub).name
            if task.name not in chosen or chosen[task.name] is not None:
                chosen.setdefault(task.name, set()).add(sub_name)  # type: ignore[union-attr]
    tasks = get_tasks(memory_types=memory_types)
    out = []
    for t in tasks:
        if items and t.name not in chosen:
            continue
        wanted = chosen.get(t.name)
        out.append(Selection(t, tuple(n for n in t.subset_names if wanted is None or n in wanted)))
    if items and memory_types and not out:
        raise LmebError(f"none of {', '.join(chosen)} is of memory type {', '.join(memory_types)}")
    return out
