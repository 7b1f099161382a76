"""Results files: one JSON per dataset per model per setting, in mteb's layout plus provenance.

Layout: ``<output>/<model-name>/<setting>/<Dataset>.json`` with a per-query sidecar
``<Dataset>.per_query.json`` (columnar: query ids and one list per metric, per subset) and, with
``--save-runs``, TREC run files ``<Dataset>.runs/<subset>.trec``.

The main file is mteb's result object (``task_name``, ``scores.test`` = one object per subset with
``hf_subset``, ``languages``, ``main_score`` and every metric, ``evaluation_time``) with an extra
``lmeb`` block: harness version, model configuration, data fingerprint, encoded/cached text counts
and wall time per stage, per subset. Every write is atomic (temporary file, then rename), so a
crash or Ctrl-C never leaves a half-written result.

The main file records the sha256 of its sidecar, and a pair is never broken by a kill: the sidecar
that matches the main file on disk is kept as ``.<Dataset>.per_query.json.prev`` until the new main
file is in place, so a reader always finds the sidecar written with the main file it reads
(``read_dataset_result`` tries both). Writers of one file take ``results_lock`` around a write.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from lmeb.errors import LmebError
from lmeb.files import atomic_path, atomic_write_json
from lmeb.json_read import parse_json, read_json, read_json_or
from lmeb.results.shapes import check_result_shapes, check_sidecar_shapes
from lmeb.safety import safe_name
from lmeb.tasks.settings import SETTINGS
from lmeb.tasks.settings import check_setting

PER_QUERY_SUFFIX = ".per_query.json"
LOCK_TIMEOUT = 600.0  # seconds a writer waits for another run writing the same results file
_NOT_METRICS = ("hf_subset", "languages", "main_score", "evaluation_time")


def model_dir_name(name: str) -> str:
    """A model name as a folder name: hub ids ``org/model`` become ``org__model`` (mteb's convention)."""
    return name.strip().strip("/").replace("/", "__")


@dataclass
class SubsetResult:
    """Scores of one subset: mean metrics (mteb names), per-query values and how they were produced."""

    subset: str
    scores: dict[str, float]
    main_score: float
    evaluation_time: float
    per_query: dict[str, list[float]] = field(default_factory=dict)  # metric -> value per query id
    query_ids: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)  # encoded/cached counts, stage times, config key
    unranked: list[str] = field(default_factory=list)  # query ids in per_query left out of the means (not in the run)
    rankings: dict[str, list[tuple[str, float]]] | None = None  # top 100 per query held in memory (lmeb.results.rankings)


@dataclass
class DatasetResult:
    """All subsets of one dataset for one model and setting, as read from or written to disk."""

    model: str
    setting: str
    task_name: str
    memory_type: str
    subsets: dict[str, SubsetResult]
    provenance: dict[str, Any] = field(default_factory=dict)  # harness version, model config, data fingerprint
    path: Path | None = None
    problems: dict[str, str] = field(default_factory=dict)  # subset -> why its entry is not to be trusted

    def score(self, subset: str, metric: str = "ndcg_at_10") -> float:
        return self.subsets[subset].scores[metric]


def result_path(output: Path, model: str, setting: str, task_name: str) -> Path:
    folder = safe_name(model_dir_name(model), "model name")  # '..' or '/x' would write outside the output
    return Path(output) / folder / safe_name(setting, "setting") / f"{safe_name(task_name, 'dataset name')}.json"


def to_mteb_json(result: DatasetResult, mteb_name: str, revision: str, languages: list[str],
                 per_query_sha256: str | None = None) -> dict:
    """The mteb result object for ``result`` (plus the ``lmeb`` provenance block)."""
    scores = []
    for sub in result.subsets.values():
        entry = {"hf_subset": sub.subset, "languages": languages, "main_score": sub.main_score}
        entry.update(sub.scores)
        entry["evaluation_time"] = sub.evaluation_time
        scores.append(entry)
    return {
        "dataset_revision": revision,
        "task_name": result.task_name,
        "mteb_task_name": mteb_name,
        "evaluation_time": round(sum(s.evaluation_time for s in result.subsets.values()), 4),
        "kg_co2_emissions": None,
        "scores": {"test": scores},
        "lmeb": {
            **result.provenance,
            "model_name": result.model,
            "setting": result.setting,
            "memory_type": result.memory_type,
            "subsets": {s.subset: s.provenance for s in result.subsets.values()},
            "per_query_sha256": per_query_sha256,
        },
    }


def sidecar_path(path: Path) -> Path:
    """The per-query sidecar of a main results file."""
    return Path(path).with_suffix(PER_QUERY_SUFFIX)


def backup_path(path: Path) -> Path:
    """Where the sidecar matching the main file waits while a new pair is written."""
    side = sidecar_path(path)
    return side.with_name(f".{side.name}.prev")


@contextlib.contextmanager
def results_lock(path: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the lock of one results file (``.<Dataset>.json.lock`` beside it) across processes and threads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path.with_name(f".{path.name}.lock"), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise LmebError(f"{path}: another lmeb run has held its lock for {timeout:.0f}s; wait for it or remove "
                        f"{lock.lock_file} if no run is writing there") from None
    try:
        yield
    finally:
        lock.release()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _recorded_sha(path: Path) -> str | None:
    """The sidecar sha256 the main file on disk records (None when there is no readable main file)."""
    obj = read_json_or(path)
    meta = obj.get("lmeb") if isinstance(obj, dict) else None
    value = meta.get("per_query_sha256") if isinstance(meta, dict) else None
    return value if isinstance(value, str) else None


def write_dataset_result(output: Path, result: DatasetResult, mteb_name: str, revision: str,
                         languages: list[str] | None = None) -> Path:
    """Write the per-query sidecar, then the main JSON, each atomically, as a pair a kill cannot break.

    Before the new sidecar replaces the old one, the sidecar matching the main file on disk is kept as
    the backup; it is deleted once the new main file (recording the new sidecar's sha256) is in place.
    Callers sharing an output hold ``results_lock(path)`` around it.
    """
    path = result_path(output, result.model, result.setting, result.task_name)
    side, backup = sidecar_path(path), backup_path(path)
    per_query = {}
    for s in result.subsets.values():
        if s.query_ids:
            per_query[s.subset] = {"query_ids": s.query_ids, "metrics": s.per_query}
            if s.unranked:
                per_query[s.subset]["unranked"] = s.unranked
    data = json.dumps(per_query, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    digest = _sha256(data)
    with atomic_path(side) as tmp:
        tmp.write_bytes(data)
        recorded = _recorded_sha(path)
        if recorded and side.is_file() and _sha256(side.read_bytes()) == recorded:
            os.replace(side, backup)  # the pair on disk stays readable until the new main file is in place
    atomic_write_json(path, to_mteb_json(result, mteb_name, revision, languages or ["eng-Latn"], digest))
    with contextlib.suppress(FileNotFoundError):
        backup.unlink()
    result.path = path
    return path


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool): what a score must be."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _entry_scores(path: Path, number: int, name: str, entry: dict, strict: bool,
                  problems: dict[str, str]) -> dict[str, float]:
    """The metrics of one ``scores.test`` entry. A metric, ``main_score`` or ``evaluation_time`` that is not
    a finite number is an error naming the file and entry (strict: tables must not average fewer subsets
    than they count) or this subset's problem (the store re-evaluates it)."""
    scores = {}
    for key, value in entry.items():
        if is_number(value) or key in ("hf_subset", "languages"):
            if key not in _NOT_METRICS:
                scores[key] = value
            continue
        reason = f"{key} is {json.dumps(value)}, not a number (a damaged or hand-edited file)"
        if strict:
            raise LmebError(f"{path}: scores.test entry {number} ({name}): {reason}")
        problems.setdefault(name, reason)
    return scores


def _read_sidecar(path: Path, expected: str | None, strict: bool) -> tuple[dict | None, str | None]:
    """The sidecar blocks written with the main file ``path`` (its own or the backup), or why there are none."""
    side = sidecar_path(path)
    found = False
    for candidate in (side, backup_path(path)):
        try:
            data = candidate.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            return None, f"{candidate}: unreadable ({exc.strerror or exc.__class__.__name__})"
        found = True
        if expected and _sha256(data) != expected:
            continue
        try:
            blocks = parse_json(data, candidate)
            check_sidecar_shapes(candidate, blocks)
        except LmebError as exc:
            message = f"{candidate}: malformed per-query file ({exc})"
            if strict:
                raise LmebError(message) from None
            return None, message
        return blocks, None
    if not found:
        return None, f"{side} is missing"
    message = f"{side}: does not match {path.name} (an interrupted write or a hand edit)"
    if strict:
        raise LmebError(f"{message}; rerun with --overwrite")
    return None, message


def read_dataset_result(path: Path, per_query: bool = False, strict: bool = True) -> DatasetResult:
    """Read one results file (and, if asked, its per-query sidecar); a bad file is a one-line error.

    ``strict=False`` (the results store) records what is wrong with a subset's entry in ``problems``
    instead of failing on it: a value that is not a number, a missing or mismatched sidecar. Strict or
    not, a missing sidecar is only a problem (``lmeb compare`` names it), never an error.
    """
    path = Path(path)
    try:
        obj = read_json(path)
        meta = obj.get("lmeb", {})
        test = obj["scores"]["test"]
    except (OSError, KeyError, TypeError, AttributeError) as exc:
        raise LmebError(f"{path}: not an lmeb/mteb results file ({exc.__class__.__name__}: {exc})") from None
    check_result_shapes(path, obj)  # wrong types ("lmeb": [], model_name: 5...): one line, not a crash later
    sub_meta = meta.get("subsets", {})
    subsets: dict[str, SubsetResult] = {}
    problems: dict[str, str] = {}
    for number, entry in enumerate(test if isinstance(test, list) else [test]):
        name = entry.get("hf_subset") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise LmebError(f"{path}: scores.test entry {number} has no 'hf_subset' (a damaged or hand-edited file)")
        if name in subsets:  # which of the two is the result? neither is used (lmeb.results.identity: one entry per subset)
            raise LmebError(f"{path}: scores.test has two entries for subset {name!r} (a damaged or hand-edited file)")
        scores = _entry_scores(path, number, name, entry, strict, problems)
        main, seconds = entry.get("main_score"), entry.get("evaluation_time")
        subsets[name] = SubsetResult(name, scores, main if is_number(main) else scores.get("ndcg_at_10", float("nan")),
                                     seconds if is_number(seconds) else 0.0, provenance=sub_meta.get(name, {}))
    if per_query:
        blocks, reason = _read_sidecar(path, meta.get("per_query_sha256"), strict)
        for name, sub in subsets.items():
            block = (blocks or {}).get(name)
            if not isinstance(block, dict):
                problems.setdefault(name, reason or f"no per-query values in {sidecar_path(path).name}")
                continue
            sub.query_ids = block.get("query_ids", [])
            sub.per_query = block.get("metrics", {})
            sub.unranked = block.get("unranked", [])
    provenance = {k: v for k, v in meta.items()
                  if k not in ("subsets", "model_name", "setting", "memory_type", "per_query_sha256")}
    return DatasetResult(
        model=meta.get("model_name", path.parent.parent.name),
        setting=meta.get("setting", path.parent.name),
        task_name=obj.get("task_name", path.stem),
        memory_type=meta.get("memory_type", ""),
        subsets=subsets,
        provenance=provenance,
        path=path,
        problems=problems,
    )


def iter_result_files(root: Path) -> Iterator[Path]:
    """Every ``<model>/<setting>/<Dataset>.json`` under ``root`` (``root`` may itself be a model folder)."""
    root = Path(root)
    if not root.exists():
        raise LmebError(f"{root}: results directory does not exist")
    for path in sorted(root.rglob("*.json")):
        if path.name.endswith(PER_QUERY_SUFFIX) or path.name.startswith("."):
            continue
        if path.parent.name in SETTINGS:
            yield path


def read_results(roots: Iterable[Path | str] | Path | str, per_query: bool = False) -> list[DatasetResult]:
    """All dataset results under the given directory (or directories); ``lmeb.load_results`` wraps them
    as ``lmeb.Results`` with its views."""
    if isinstance(roots, (str, Path)):
        roots = [roots]
    return [read_dataset_result(p, per_query) for r in roots for p in iter_result_files(Path(r))]
