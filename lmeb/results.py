"""Results files: one JSON per dataset per model per setting, in mteb's layout plus provenance.

Layout: ``<output>/<model-name>/<setting>/<Dataset>.json`` with a per-query sidecar
``<Dataset>.per_query.json`` (columnar: query ids and one list per metric, per subset) and, with
``--save-runs``, TREC run files ``<Dataset>.runs/<subset>.trec``.

The main file is mteb's result object (``task_name``, ``scores.test`` = one object per subset with
``hf_subset``, ``languages``, ``main_score`` and every metric, ``evaluation_time``) with an extra
``lmeb`` block: harness version, model configuration, data fingerprint, encoded/cached text counts
and wall time per stage, per subset. Every write is atomic (temporary file, then rename), so a
crash or Ctrl-C never leaves a half-written result.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmeb.errors import LmebError
from lmeb.files import atomic_write_json, atomic_write_text
from lmeb.settings import SETTINGS
from lmeb.settings import check_setting as check_setting  # re-exported: callers check settings through here too

PER_QUERY_SUFFIX = ".per_query.json"
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

    def score(self, subset: str, metric: str = "ndcg_at_10") -> float:
        return self.subsets[subset].scores[metric]


def result_path(output: Path, model: str, setting: str, task_name: str) -> Path:
    return Path(output) / model_dir_name(model) / setting / f"{task_name}.json"


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


def write_dataset_result(output: Path, result: DatasetResult, mteb_name: str, revision: str,
                         languages: list[str] | None = None) -> Path:
    """Write the per-query sidecar, then the main JSON, each atomically.

    The main file records the sidecar's sha256, so a kill between the two renames (new sidecar beside
    an old main file) is detected on reading instead of pairing new per-query values with old scores.
    """
    path = result_path(output, result.model, result.setting, result.task_name)
    per_query = {
        s.subset: {"query_ids": s.query_ids, "metrics": s.per_query} for s in result.subsets.values() if s.query_ids
    }
    side = json.dumps(per_query, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    atomic_write_text(path.with_suffix(PER_QUERY_SUFFIX), side)
    digest = hashlib.sha256(side.encode("utf-8")).hexdigest()
    atomic_write_json(path, to_mteb_json(result, mteb_name, revision, languages or ["eng-Latn"], digest))
    result.path = path
    return path


def read_dataset_result(path: Path, per_query: bool = False) -> DatasetResult:
    """Read one results file (and, if asked, its per-query sidecar); a bad file is a one-line error."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        meta = obj.get("lmeb", {})
        test = obj["scores"]["test"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise LmebError(f"{path}: not an lmeb/mteb results file ({exc.__class__.__name__}: {exc})") from None
    sub_meta = meta.get("subsets", {})
    subsets: dict[str, SubsetResult] = {}
    for number, entry in enumerate(test if isinstance(test, list) else [test]):
        name = entry.get("hf_subset") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise LmebError(f"{path}: scores.test entry {number} has no 'hf_subset' (a damaged or hand-edited file)")
        scores = {k: v for k, v in entry.items() if k not in _NOT_METRICS and isinstance(v, (int, float))}
        subsets[name] = SubsetResult(name, scores, entry.get("main_score", scores.get("ndcg_at_10", float("nan"))),
                                     entry.get("evaluation_time", 0.0), provenance=sub_meta.get(name, {}))
    if per_query:
        side = path.with_suffix(PER_QUERY_SUFFIX)
        if side.is_file():
            text = side.read_text(encoding="utf-8")
            expected = meta.get("per_query_sha256")
            if expected and hashlib.sha256(text.encode("utf-8")).hexdigest() != expected:
                raise LmebError(f"{side}: does not match {path.name} (an interrupted write?); rerun with --overwrite")
            try:
                blocks = json.loads(text)
            except json.JSONDecodeError as exc:
                raise LmebError(f"{side}:{exc.lineno}: malformed per-query file ({exc.msg})") from None
            for name, block in blocks.items():
                if name in subsets:
                    subsets[name].query_ids = block["query_ids"]
                    subsets[name].per_query = block["metrics"]
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


def load_results(roots: Iterable[Path | str] | Path | str, per_query: bool = False) -> Results:
    """All dataset results under the given directory (or directories), as ``Results``."""
    if isinstance(roots, (str, Path)):
        roots = [roots]
    return Results(read_dataset_result(p, per_query) for r in roots for p in iter_result_files(Path(r)))


class Results(list[DatasetResult]):
    """Dataset results in memory (what ``lmeb.evaluate`` returns and ``load_results`` reads): every metric
    per subset and, where read or computed, per query; views as pandas DataFrames; ``save`` writes them."""

    def __init__(self, items: Iterable[DatasetResult] = (), *, name: str | None = None, setting: str | None = None,
                 summaries: list[Any] | None = None, seconds: float | None = None) -> None:
        super().__init__(items)
        self.name = name  # lmeb.evaluate sets these: the model's results name, the setting,
        self.setting = setting
        self.summaries = summaries or []  # what each dataset's run did (lmeb.runner.DatasetSummary)
        self.seconds = seconds  # and the wall time

    def table(self, view: str = "paper", metric: str = "ndcg_at_10", **options: Any) -> Any:
        """The paper view (``view="datasets"``/``"subsets"`` for the others) as a DataFrame (``lmeb.report``)."""
        from lmeb.report import table

        return table(list(self), view=view, metric=metric, **options)

    @property
    def scores(self) -> Any:
        """Long DataFrame: model, setting, memory_type, dataset, subset, metric, value (one row per number)."""
        import pandas as pd

        rows = [(r.model, r.setting, r.memory_type, r.task_name, s.subset, metric, value)
                for r in self for s in r.subsets.values() for metric, value in s.scores.items()]
        return pd.DataFrame(rows, columns=["model", "setting", "memory_type", "dataset", "subset", "metric", "value"])

    def per_query(self, metric: str | None = None) -> Any:
        """Long DataFrame of per-query values: model, setting, dataset, subset, query_id, metric, value."""
        import pandas as pd

        rows = [(r.model, r.setting, r.task_name, s.subset, qid, name, value)
                for r in self for s in r.subsets.values() for name, values in s.per_query.items()
                if metric is None or name == metric for qid, value in zip(s.query_ids, values, strict=True)]
        return pd.DataFrame(rows, columns=["model", "setting", "dataset", "subset", "query_id", "metric", "value"])

    def save(self, output: Path | str) -> list[Path]:
        """Write every dataset result under ``output`` exactly as ``lmeb run`` does; returns the main files."""
        from lmeb.tasks import get_task

        paths = []
        for result in self:
            task = get_task(result.task_name)
            paths.append(write_dataset_result(Path(output), result, task.mteb_name, task.mteb_revision))
        return paths

    def __repr__(self) -> str:
        runs = sorted({(r.model, r.setting) for r in self})
        subsets = sum(len(r.subsets) for r in self)
        return f"Results({len(self)} dataset(s), {subsets} subset(s) of {', '.join(f'{m} ({s})' for m, s in runs)})"
