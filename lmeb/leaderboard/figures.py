"""The leaderboard's PNG figures (matplotlib, no display): bars per memory type, w/o-vs-w/ inst. slopes.

Numbers come from the site's data (``lmeb.leaderboard.site.build_data``); an incomplete group has no number
and no bar. A memory type that no row has complete is drawn as its complete datasets instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lmeb.tasks.registry import MEMORY_TYPES, all_tasks

METRICS = (("ndcg_at_10", "N@10"), ("R_cap_at_10", "R@10"))
SETTING_LABELS = {"wo_inst": "w/o inst.", "w_inst": "w/ inst."}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"


def row_label(row: dict) -> str:
    return (f"{row['model']} · {SETTING_LABELS.get(row['setting'], row['setting'])}" + (" (paper)" * row["published"])
            + (" § synthetic" if row.get("synthetic") else ""))


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
        if not numbers:  # no complete type score: draw its complete datasets instead of nothing
            _dataset_bars(data, mtype, metric, label, save)
            continue
        shown = incomplete + numbers  # barh draws bottom-up: incomplete rows (no bar, no mean) at the bottom
        fig = Figure(figsize=(6.4, 1.0 + 0.28 * len(shown)), layout="constrained")
        ax = fig.add_subplot()
        colors = ["#c9b88a" if r["published"] else "#2f5fb3" for r, _ in shown]
        bars = ax.barh([_short(row_label(r)) for r, _ in shown], [v for _, v in shown], color=colors)
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


def _dataset_bars(data: dict, mtype: str, metric: str, label: str, save: Any) -> None:
    """A bar per complete dataset of ``mtype`` per row (for a type no row has complete), or nothing."""
    from matplotlib.figure import Figure

    names = [t.name for t in all_tasks() if t.memory_type == mtype]
    bars = [(f"{_short(row_label(r), 40)} · {name}", v) for r in data["rows"] for name in names
            if (v := ((r["datasets"].get(name) or {}).get("scores") or {}).get(metric)) is not None]
    if not bars:
        return
    fig = Figure(figsize=(6.4, 1.2 + 0.28 * len(bars)), layout="constrained")
    ax = fig.add_subplot()
    drawn = ax.barh([b for b, _ in bars][::-1], [v for _, v in bars][::-1], color="#2f5fb3")
    ax.bar_label(drawn, labels=[f"{v:.2f}" for _, v in bars][::-1], padding=2, fontsize=7)
    ax.set_xlabel(f"{label} (%)")
    ax.set_title(f"{mtype}: complete datasets only (no row has all {len(names)}: no type mean)", fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_xlim(0, 100.0)
    save(fig, f"datasets_{mtype.lower()}.png", f"{mtype}: {label} of the complete datasets per run "
         "(no run has the whole type, so no type mean)")


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
