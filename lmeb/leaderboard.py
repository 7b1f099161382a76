"""The static leaderboard site: results directories in, ``index.html`` + ``data.json`` + PNG figures out.

Every number comes from :mod:`lmeb.report` (the same aggregation as ``lmeb table``); this module only
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
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from lmeb import __version__, paper, report
from lmeb.errors import LmebError
from lmeb.results import DatasetResult
from lmeb.tasks import MEMORY_TYPES, all_tasks

METRICS = (("ndcg_at_10", "N@10"), ("R_cap_at_10", "R@10"))
SETTING_LABELS = {"wo_inst": "w/o inst.", "w_inst": "w/ inst."}
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
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    counts[key] = counts.get(key, 0) + v
    counts = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in sorted(counts.items())}
    return config, common, counts, varying


def _group_key(level: str, group: str) -> str:
    return group if level == "type" else level


def _unit(level: str) -> str:
    return {"dataset": "subsets", "mean_type": "types"}.get(level, "datasets")


def _put_aggregates(rows: dict[tuple, dict], agg: Any, metric: str) -> None:
    """Fill rows' type/mean cells (and per-dataset cells) from a ``report.aggregate``-shaped frame.

    Incomplete groups get ``None`` (report gives NaN: no mean over fewer parts) and, for types and
    means, ``incomplete[key] = "n/N datasets"`` (or types); a dataset carries ``done``/``total`` subsets.
    """
    for rec in agg.itertuples(index=False):
        row = rows[(rec.model, rec.setting)]
        value = _num(rec.value * 100)
        if rec.level == "dataset":
            ds = row["datasets"].setdefault(rec.group, {"scores": {}, "complete": bool(rec.complete),
                                                        "done": int(rec.n), "total": int(rec.total), "subsets": {}})
            ds["scores"][metric] = value
            continue
        key = _group_key(rec.level, rec.group)
        row["scores"].setdefault(key, {})[metric] = value
        if not rec.complete:
            row["incomplete"][key] = f"{rec.n}/{rec.total} {_unit(rec.level)}"


def _run_rows(results: Sequence[DatasetResult]) -> list[dict]:
    """One row per (model, setting) of the runs, every number from ``lmeb.report``."""
    if not results:
        return []
    by_row: dict[tuple[str, str], list[DatasetResult]] = {}
    for r in results:
        by_row.setdefault((r.model, r.setting), []).append(r)
    order = sorted(by_row, key=lambda k: (k[0].lower(), list(SETTING_LABELS).index(k[1])
                                          if k[1] in SETTING_LABELS else 9))
    rows: dict[tuple, dict] = {}
    for key in order:
        config, common, counts, per_dataset = _provenance(by_row[key])
        rows[key] = {"model": key[0], "setting": key[1], "published": False, "source": "run", "scores": {},
                     "incomplete": {}, "datasets": {}, "config": config, "provenance": common, "counts": counts,
                     "files": len(by_row[key])}
        rows[key]["_prov"] = per_dataset
    present = set(report.available_metrics(results))
    for metric, _ in METRICS:
        if metric not in present:
            continue
        frame = report.scores_frame(results, metric)
        _put_aggregates(rows, report.aggregate(frame), metric)
        for rec in frame.itertuples(index=False):
            subsets = rows[(rec.model, rec.setting)]["datasets"][rec.dataset]["subsets"]
            subsets.setdefault(rec.subset, {})[metric] = _num(rec.value * 100)
    for row in rows.values():
        per_dataset = row.pop("_prov")
        for name, ds in row["datasets"].items():
            ds["provenance"] = per_dataset.get(name, {})
        row["has_incomplete"] = bool(row["incomplete"]) or len(row["datasets"]) < len(all_tasks())
    return list(rows.values())


def _paper_rows(with_paper: str) -> list[dict]:
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
            _put_aggregates(rows, paper.published_frame(setting, metric), metric)
    return list(rows.values())


def build_data(results: Sequence[DatasetResult], with_paper: str | None = None, title: str = DEFAULT_TITLE) -> dict:
    """The leaderboard as one JSON-able dict (what ``data.json`` holds and the page renders)."""
    if with_paper not in (None, *PAPER_CHOICES):
        raise LmebError(f"--with-paper must be one of {', '.join(PAPER_CHOICES)}, not {with_paper!r}")
    tasks = all_tasks()
    rows = _run_rows(results) + (_paper_rows(with_paper) if with_paper else [])
    for i, row in enumerate(rows):
        row["id"] = f"r{i}"
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
    return resources.files("lmeb").joinpath("leaderboard_assets", name).read_text(encoding="utf-8")


def render_html(data: dict) -> str:
    """index.html with the CSS, the script and the data inlined (works from file://, no network)."""
    return Template(_asset("index.html")).substitute(
        title=html.escape(data["title"]), version=html.escape(__version__),
        css=_asset("leaderboard.css"), js=_asset("leaderboard.js"), data=_inline_json(data))


# -------------------------------------------------------------------------------------------- figures


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"


def _row_label(row: dict) -> str:
    return f"{row['model']} · {SETTING_LABELS.get(row['setting'], row['setting'])}" + (" (paper)" * row["published"])


def _short(text: str, width: int = 56) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def write_figures(data: dict, folder: Path) -> list[dict]:
    """A bar chart per memory type (N@10 of every row) and a w/o-vs-w/ inst. slope chart per model with both."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    folder.mkdir(parents=True, exist_ok=True)
    metric, label = METRICS[0]
    figures: list[dict] = []

    def save(fig: Figure, name: str, caption: str) -> None:
        FigureCanvasAgg(fig)
        fig.savefig(folder / name, dpi=100)
        figures.append({"file": f"{folder.name}/{name}", "caption": caption})

    for mtype in MEMORY_TYPES:
        scored = [(r, (r["scores"].get(mtype) or {}).get(metric)) for r in data["rows"]]
        numbers = sorted([(r, v) for r, v in scored if v is not None], key=lambda x: x[1])
        incomplete = [(r, 0.0) for r, v in scored if v is None and mtype in r["incomplete"]]
        if not numbers:
            continue
        shown = incomplete + numbers  # barh draws bottom-up: incomplete rows (no bar, no mean) at the bottom
        fig = Figure(figsize=(6.4, 1.0 + 0.28 * len(shown)), layout="constrained")
        ax = fig.add_subplot()
        colors = ["#c9b88a" if r["published"] else "#2f5fb3" for r, _ in shown]
        bars = ax.barh([_short(_row_label(r)) for r, _ in shown], [v for _, v in shown], color=colors)
        ax.bar_label(bars, labels=[f"{r['incomplete'][mtype]} complete*, no mean" if i < len(incomplete)
                                   else f"{v:.2f}" for i, (r, v) in enumerate(shown)], padding=2, fontsize=7)
        for tick in ax.get_yticklabels()[:len(incomplete)]:
            tick.set_color("#8a8f99")
        ax.set_xlabel(f"{mtype} {label} (%)")
        ax.set_title(f"{mtype}: mean {label} over its datasets", fontsize=10)
        ax.tick_params(axis="y", labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_xlim(0, max(100.0, max(v for _, v in numbers) * 1.1))
        ax.margins(y=0.01)
        save(fig, f"bar_{mtype.lower()}.png", f"{mtype}: {label} per run (blue: your runs, beige: published"
             + ("; n/N*: incomplete, no mean" if incomplete else "") + ")")

    pairs: dict[tuple[str, bool], dict[str, dict]] = {}
    for r in data["rows"]:
        pairs.setdefault((r["model"], r["published"]), {})[r["setting"]] = r
    for (model, published), by_setting in pairs.items():
        if set(by_setting) == {"wo_inst", "w_inst"} and any(_slope_pair(by_setting, k, metric)
                                                             for k, _ in _SLOPE_LINES):
            name = f"slope_{_slug(model)}{'_paper' * published}_{len(figures)}.png"
            caption = f"{model}{' (paper)' * published}: {label} without vs with task instructions"
            save(_slope_figure(model + " (paper)" * published, by_setting, metric, label), name, caption)
    return figures


_SLOPE_LINES = (("Episodic", "#d1603d"), ("Dialogue", "#3b8a5a"), ("Semantic", "#2f5fb3"),
                ("Procedural", "#8a5ab0"), ("mean_type", "#222222"))


def _slope_pair(by_setting: dict[str, dict], key: str, metric: str) -> tuple[float, float] | None:
    """(w/o, w/ inst.) of one group, or None when either setting has no number (not run or incomplete)."""
    a = (by_setting["wo_inst"]["scores"].get(key) or {}).get(metric)
    b = (by_setting["w_inst"]["scores"].get(key) or {}).get(metric)
    return (a, b) if a is not None and b is not None else None


def _slope_figure(title: str, by_setting: dict[str, dict], metric: str, label: str) -> Any:
    """The paper's w/o-vs-w/ inst. slope chart: a line per memory type and Mean (Type), labels kept apart.

    A group without a number in either setting (incomplete: no mean) has no line; a footnote names it.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6, 3.4))
    fig.subplots_adjust(left=0.14, right=0.97, top=0.9, bottom=0.1)
    ax = fig.add_subplot()
    lines, left_out = [], []
    for key, color in _SLOPE_LINES:
        name = "Mean (Type)" if key == "mean_type" else key
        pair = _slope_pair(by_setting, key, metric)
        if pair:
            lines.append((name, *pair, color, key == "mean_type"))
        elif any(key in r["incomplete"] for r in by_setting.values()):
            left_out.append(name)
    values = [v for _, a, b, _, _ in lines for v in (a, b)] or [0.0, 1.0]
    gap = max(max(values) - min(values), 1.0) * 0.08
    placed: list[float] = []  # label heights, spread apart where the w/ inst. ends are close
    for _, _, b, _, _ in sorted(lines, key=lambda x: x[2]):
        placed.append(max(b, placed[-1] + gap) if placed else b)
    ax.set_ylim(min(values) - gap, max([*values, *placed]) + gap)
    for (name, a, b, color, bold), y in zip(sorted(lines, key=lambda x: x[2]), placed, strict=True):
        ax.plot([0, 1], [a, b], marker="o", color=color, linewidth=2.6 if bold else 1.6)
        ax.annotate(f"{name} {b - a:+.2f}", (1, b), xytext=(1.07, y), textcoords="data", va="center",
                    fontsize=8, color=color, fontweight="bold" if bold else "normal")
    ax.set_xticks([0, 1], [SETTING_LABELS["wo_inst"], SETTING_LABELS["w_inst"]])
    ax.set_xlim(-0.12, 1.85)
    ax.set_ylabel(f"{label} (%)")
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    if left_out:
        fig.subplots_adjust(bottom=0.16)
        fig.text(0.02, 0.02, f"not shown (incomplete, no mean): {', '.join(left_out)}", fontsize=7, color="#5d6778")
    return fig


# ------------------------------------------------------------------------------------------ the site


def _looks_like_site(path: Path) -> bool:
    return not any(path.iterdir()) or all((path / f).is_file() for f in _SITE_FILES)


def write_site(results: Iterable[DatasetResult] | Iterable[Path | str], out: Path, with_paper: str | None = None,
               title: str = DEFAULT_TITLE, figures: bool = True) -> Site:
    """Build the site into a temporary folder beside ``out``, then swap it in (never half-written).

    ``results`` is a list of ``DatasetResult`` or of results directories. An existing ``out`` is
    replaced only if it is empty or looks like a leaderboard site (index.html + data.json).
    """
    loaded = report.as_results(results)
    if not loaded and not with_paper:
        raise LmebError("no results files found (give results directories, or --with-paper for the paper's rows)")
    out = Path(out)
    if out.exists() and (not out.is_dir() or not _looks_like_site(out)):
        raise LmebError(f"{out}: exists and is not a leaderboard site (no index.html and data.json); "
                        "refusing to replace it, choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)
    data = build_data(loaded, with_paper, title)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        if figures:
            data["figures"] = write_figures(data, tmp / "figures")
        (tmp / "data.json").write_text(json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False) + "\n",
                                       encoding="utf-8")
        (tmp / "index.html").write_text(render_html(data), encoding="utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Site(out, len(data["rows"]), sorted((out / "figures").glob("*.png")) if figures else [])


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
