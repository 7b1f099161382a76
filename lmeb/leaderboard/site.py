"""The static leaderboard site: results directories in, ``index.html`` + ``data.json`` + PNG figures out.

Every number comes from :mod:`lmeb.report.views` (the same aggregation as ``lmeb table``); this module only
lays it out. An incomplete group has no number (``null`` in data.json, never NaN) and a row's
``incomplete`` entry, e.g. ``"7/8 datasets"``; the page shows it as ``7/8*``, the figures leave it out.
The page is one self-contained HTML file (CSS, JS and the data inlined, because browsers refuse
``fetch()`` of local files from ``file://``), so it opens from disk with no server and no network.
Strings from results files reach the page through ``textContent`` only, and the inlined JSON escapes
``<``, ``>`` and ``&``, so a model called ``</script>`` cannot break out. The site is built in a
temporary folder beside the target and swapped in, so a crash never leaves a half-written site.
"""

from __future__ import annotations

import contextlib
import html
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from lmeb import __version__
from lmeb.errors import LmebError
from lmeb.files import writable_folder
from lmeb.leaderboard.figures import METRICS, SETTING_LABELS, row_label, write_figures
from lmeb.leaderboard.pareto import pareto_data, write_pareto_figures
from lmeb.report import paper
from lmeb.report import views as report
from lmeb.report.aggregate import (
    as_results,
    available_metrics,
    by_run,
    ignores_instructions,
    missing_note,
    scores_frame,
)
from lmeb.report.efficiency_views import run_efficiency
from lmeb.report.growth_view import growth_figures
from lmeb.report.table import Table
from lmeb.results.dataset_result import DatasetResult
from lmeb.results.identity import (
    SCOPE_MARK,
    SCOPE_NOTE,
    SYNTHETIC_MARK,
    UNVERIFIED_MARK,
    UNVERIFIED_NOTE,
    source_label,
    source_marks,
)
from lmeb.tasks.registry import MEMORY_TYPES, all_tasks, get_task

GROUPS = (*((t, t) for t in MEMORY_TYPES), ("mean_dataset", "Mean (Dataset)"), ("mean_type", "Mean (Type)"))
PAPER_CHOICES = ("wo_inst", "w_inst", "both")
DEFAULT_TITLE = "LMEB leaderboard"
_SITE_FILES = ("index.html", "data.json")


@dataclass
class Site:
    """What ``write_site`` produced."""

    out: Path
    rows: int
    figures: list[Path]
    missing: dict[str, str] = field(default_factory=dict)  # run label -> what keeps it from the means

    @property
    def index(self) -> Path:
        return self.out / "index.html"


# ----------------------------------------------------------------------------------------------- data


def _num(value: Any) -> float | None:
    """A score for JSON: None for missing/NaN, rounded to 2 decimals (percent, as in the paper)."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else round(v, 2)


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(obj, dict):
        return {prefix or "value": obj}
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(_flatten(v, key) if isinstance(v, dict) else {key: v})
    return out


def _provenance(results: Sequence[DatasetResult]) -> tuple[dict, dict, dict, dict[str, dict]]:
    """(model config, run-wide provenance, summed subset counters, per-dataset provenance) of one row.

    Provenance values equal across the row's datasets are run-wide; the others (data fingerprints,
    dates) stay per dataset. Numeric subset counters (encoded/cached texts, stage times) are summed.
    """
    per_dataset = {r.task_name: dict(r.provenance) for r in results}
    config: dict[str, Any] = {}
    common: dict[str, Any] = {}
    keys = sorted({k for p in per_dataset.values() for k in p})
    varying: dict[str, dict] = {d: {} for d in per_dataset}
    for key in keys:
        values = [p.get(key) for p in per_dataset.values()]
        same = all(json.dumps(v, sort_keys=True, default=str) == json.dumps(values[0], sort_keys=True, default=str)
                   for v in values)
        if same and values[0] is None:
            continue
        if same and key == "model_config" and isinstance(values[0], dict):
            config.update(_flatten(values[0]))
        elif same and "config" in key.lower() and isinstance(values[0], dict):
            config.update(_flatten(values[0], key))  # e.g. reranker_config.name
        elif same:
            common[key] = values[0]
        else:
            for d, p in per_dataset.items():
                if key in p:
                    varying[d][key] = p[key]
    counts: dict[str, float] = {}
    for r in results:
        for sub in r.subsets.values():
            for key, v in _flatten(sub.provenance).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and not key.startswith("efficiency."):
                    counts[key] = counts.get(key, 0) + v
    counts = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in sorted(counts.items())}
    return config, common, counts, varying


_GROUP_KEYS = {"Dataset": ("mean_dataset", "datasets"), "Type": ("mean_type", "types")}


def _put_table(rows: dict[tuple, dict], t: Table, metric: str, source: str) -> None:
    """Fill rows' type/mean cells and per-dataset cells from a datasets-view ``Table`` (``lmeb.report.views``).

    Incomplete groups get ``None`` (no mean over fewer parts) and, for types and means,
    ``incomplete[key] = "n/N datasets"`` (or types); a dataset carries ``done``/``total`` subsets.
    """
    for trow in t.rows:
        if trow.labels[2] != source:
            continue
        row = rows[trow.labels[:2]]
        for (group, name), cell in trow.cells.items():
            value = _num(cell.value) if cell.complete else None
            if group == "Mean" or name == "Mean":
                key, unit = _GROUP_KEYS[name] if group == "Mean" else (group, "datasets")
                row["scores"].setdefault(key, {})[metric] = value
                if not cell.complete:
                    row["incomplete"][key] = f"{cell.parts} {unit}"
                continue
            total = len(get_task(name).subset_names)
            done = int(cell.parts.split("/")[0]) if cell.parts else total
            ds = row["datasets"].setdefault(name, {"scores": {}, "complete": cell.complete, "done": done,
                                                   "total": total, "subsets": {}})
            ds["scores"][metric] = value


def _run_entries(results: Sequence[DatasetResult]) -> list[dict]:
    """One row per (model, setting) of the runs, every number from ``lmeb.report.views``'s datasets table."""
    if not results:
        return []
    runs = by_run(results)
    order = sorted(runs, key=lambda k: (k[0].lower(), list(SETTING_LABELS).index(k[1])
                                        if k[1] in SETTING_LABELS else 9))
    rows: dict[tuple, dict] = {}
    for key in order:
        config, common, counts, per_dataset = _provenance(runs[key])
        rows[key] = {"model": key[0], "setting": key[1], "published": False, "source": "run", "scores": {},
                     "incomplete": {}, "datasets": {}, "config": config, "provenance": common, "counts": counts,
                     "files": len(runs[key]), "missing": missing_note(runs[key]),
                     "efficiency": run_efficiency(runs[key])}  # summed over its datasets (lmeb.engine.efficiency)
        if key[1] == "w_inst" and ignores_instructions(runs[key]):
            rows[key]["note"] = report.NO_INSTRUCTIONS_NOTE.lstrip(report.NO_INSTRUCTIONS_MARK + " ")
        rows[key]["data_source"] = sorted({source_label(r) for r in runs[key]})  # lmeb.results.identity
        marks = source_marks(runs[key])  # badges: the identity marks of lmeb table, spelled out on the page
        if SYNTHETIC_MARK in marks:  # a synthetic run never passes for a real one
            rows[key]["synthetic"] = report.SYNTHETIC_NOTE.removeprefix(SYNTHETIC_MARK + " ")
        if SCOPE_MARK in marks:
            rows[key]["scope"] = SCOPE_NOTE.removeprefix(SCOPE_MARK + " ")
        if UNVERIFIED_MARK in marks:
            rows[key]["unverified"] = UNVERIFIED_NOTE.removeprefix(UNVERIFIED_MARK + " ")
        rows[key]["_prov"] = per_dataset
    present = set(available_metrics(results))
    for metric, _ in METRICS:
        if metric not in present:
            continue
        _put_table(rows, report.datasets_table(list(results), metric), metric, "run")
        for rec in scores_frame(results, metric).itertuples(index=False):
            subsets = rows[(rec.model, rec.setting)]["datasets"][rec.dataset]["subsets"]
            subsets.setdefault(rec.subset, {})[metric] = _num(rec.value * 100)
    for row in rows.values():
        per_dataset = row.pop("_prov")
        for name, ds in row["datasets"].items():
            ds["provenance"] = per_dataset.get(name, {})
        row["has_incomplete"] = bool(row["incomplete"]) or len(row["datasets"]) < len(all_tasks())
    return list(rows.values())


def _paper_entries(with_paper: str) -> list[dict]:
    """The LMEB paper's published rows (type scores and means only), marked published."""
    settings = ("wo_inst", "w_inst") if with_paper == "both" else (with_paper,)
    rows: dict[tuple, dict] = {}
    for setting in settings:
        for p in paper.paper_rows(setting):
            rows[(p.model, setting)] = {
                "model": p.model, "setting": setting, "published": True,
                "source": f"LMEB paper, Table {2 if setting == 'wo_inst' else 3}", "scores": {}, "incomplete": {},
                "datasets": {}, "info": {"size": p.size, "dim": p.dim}, "has_incomplete": False}
        for metric, _ in METRICS:
            _put_table(rows, report.datasets_table([], metric, with_paper=setting), metric, "published")
    return list(rows.values())


def build_data(results: Sequence[DatasetResult], with_paper: str | None = None, title: str = DEFAULT_TITLE) -> dict:
    """The leaderboard as one JSON-able dict (what ``data.json`` holds and the page renders)."""
    if with_paper not in (None, *PAPER_CHOICES):
        raise LmebError(f"--with-paper must be one of {', '.join(PAPER_CHOICES)}, not {with_paper!r}")
    tasks = all_tasks()
    rows = _run_entries(results) + (_paper_entries(with_paper) if with_paper else [])
    for i, row in enumerate(rows):
        row["id"] = f"r{i}"
    pareto = pareto_data(rows)
    n_runs = sum(not r["published"] for r in rows)
    models = len({r["model"] for r in rows if not r["published"]})
    subtitle = (f"{models} model{'s' * (models != 1)}, {n_runs} run{'s' * (n_runs != 1)}"
                + (f", plus published rows from the LMEB paper ({_paper_label(with_paper)})" if with_paper else "")
                + f" · 22 datasets, 193 tasks, 4 memory types · generated {_now()} by lmeb {__version__}")
    return {
        "title": title,
        "subtitle": subtitle,
        "generated": _now(),
        "lmeb_version": __version__,
        "metrics": [{"key": k, "label": label} for k, label in METRICS],
        "settings": SETTING_LABELS,
        "groups": [{"key": k, "label": label} for k, label in GROUPS],
        "memory_types": [{"name": m, "datasets": [t.name for t in tasks if t.memory_type == m]} for m in MEMORY_TYPES],
        "datasets": {t.name: {"memory_type": t.memory_type, "subsets": t.subset_names} for t in tasks},
        "rows": rows,
        "pareto": pareto,  # quality against cost per run, the front marked (lmeb.leaderboard.pareto)
        "figures": [],
    }


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _paper_label(with_paper: str) -> str:
    return {"wo_inst": "Table 2, w/o inst.", "w_inst": "Table 3, w/ inst.", "both": "Tables 2 and 3"}[with_paper]


# ---------------------------------------------------------------------------------------------- pages


def _inline_json(obj: Any) -> str:
    """JSON safe inside a <script> element: no '</script>', no '<!--', no HTML entities, no JS line breaks."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for char, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                      ("\u2029", "\\u2029")):
        text = text.replace(char, esc)
    return text


def _asset(name: str) -> str:
    return resources.files("lmeb").joinpath("leaderboard", "assets", name).read_text(encoding="utf-8")


def render_html(data: dict) -> str:
    """index.html with the CSS, the script and the data inlined (works from file://, no network)."""
    return Template(_asset("index.html")).substitute(
        title=html.escape(data["title"]), version=html.escape(__version__),
        css=_asset("leaderboard.css"), js=_asset("leaderboard_pareto.js") + _asset("leaderboard.js"),
        data=_inline_json(data))


# ------------------------------------------------------------------------------------------ the site


def _looks_like_site(path: Path) -> bool:
    return not any(path.iterdir()) or all((path / f).is_file() for f in _SITE_FILES)


def write_site(results: Iterable[DatasetResult] | Iterable[Path | str], out: Path, with_paper: str | None = None,
               title: str = DEFAULT_TITLE, figures: bool = True) -> Site:
    """Build the site into a temporary folder beside ``out``, then swap it in (never half-written).

    ``results`` is a list of ``DatasetResult`` or of results directories. An existing ``out`` is
    replaced only if it is empty or looks like a leaderboard site (index.html + data.json).
    """
    loaded = as_results(results)
    if not loaded and not with_paper:
        raise LmebError("no results files found (give results directories, or --with-paper for the paper's rows)")
    out = Path(out)
    restore_site(out)  # a build killed between the two renames left the previous site aside
    if out.exists() and (not out.is_dir() or not _looks_like_site(out)):
        raise LmebError(f"{out}: exists and is not a leaderboard site (no index.html and data.json); "
                        "refusing to replace it, choose another --out")
    writable_folder(out.parent, "the leaderboard site", "choose another --out")  # read-only, /proc: one line
    _remove_stale(out)
    data = build_data(loaded, with_paper, title)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        if figures:
            data["figures"] = (write_figures(data, tmp / "figures")
                               + write_pareto_figures(data["pareto"], tmp / "figures")
                               + growth_figures(loaded, tmp / "figures"))
        (tmp / "data.json").write_text(json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False) + "\n",
                                       encoding="utf-8")
        (tmp / "index.html").write_text(render_html(data), encoding="utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    missing = {row_label(r): r["missing"] for r in data["rows"] if r.get("missing")}
    return Site(out, len(data["rows"]), sorted((out / "figures").glob("*.png")) if figures else [], missing)


def restore_site(out: Path) -> Path | None:
    """When nothing is at ``out`` but a previous site sits aside as ``.<out>.old-*`` (a build killed between
    ``_swap``'s two renames), rename the newest such site back to ``out``; returns it, else None."""
    out = Path(out)
    if out.exists() or out.is_symlink() or not out.parent.is_dir():
        return None
    aside = [p for p in out.parent.glob(f".{out.name}.old-*")
             if p.is_dir() and any(p.iterdir()) and _looks_like_site(p)]
    if not aside:
        return None
    newest = max(aside, key=lambda p: p.stat().st_mtime)
    with contextlib.suppress(OSError):
        os.replace(newest, out)
        return newest
    return None


def _remove_stale(out: Path, age_s: float = 3600.0) -> None:
    """Delete temporary folders that a killed build left beside ``out`` (older than an hour: not a live build)."""
    now = time.time()
    for pattern in (f".{out.name}.tmp-*", f".{out.name}.old-*"):
        for path in out.parent.glob(pattern):
            with contextlib.suppress(OSError):
                if path.is_dir() and now - path.stat().st_mtime > age_s:
                    shutil.rmtree(path)


def _swap(new: Path, out: Path) -> None:
    """Put folder ``new`` at ``out``: rename the old site aside, rename the new one in, delete the old."""
    if not out.exists():
        os.replace(new, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rmdir(old)
    os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        os.replace(old, out)  # put the previous site back
        raise
    with contextlib.suppress(OSError):
        shutil.rmtree(old)
