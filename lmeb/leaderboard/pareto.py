"""Quality against cost for the leaderboard: the Pareto data (``data.json["pareto"]``) and its figures.

Quality is Mean (Type) N@10 when every plotted run has it; else the mean N@10 over the datasets complete
in every plotted run (named in the label), so no run is scored on an easier set than another. Cost is
the model's seconds per 1,000 texts (``lmeb.engine.efficiency``), and its parameter count where known. A run is
on the Pareto front when no other run is at least as good in both with one strictly better: cheaper or
equal cost and higher quality. Runs without an efficiency record (older results files, published rows)
are left out and named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

COSTS = (("seconds_per_1k_texts", "model seconds per 1,000 texts"), ("parameters", "parameters"))
QUALITY_METRIC = "ndcg_at_10"


def front(points: list[tuple[float, float]]) -> list[bool]:
    """For (cost, quality) points: on the Pareto front (lower cost, higher quality)?"""
    on = [False] * len(points)
    best = None
    for i in sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1])):
        if best is None or points[i][1] > best:
            on[i], best = True, points[i][1]
    return on


def _quality(rows: list[dict]) -> tuple[dict[str, float], str, str] | None:
    """{row id: quality}, its label and what it is averaged over (rule: module docstring); None if no common ground."""
    types = {r["id"]: (r["scores"].get("mean_type") or {}).get(QUALITY_METRIC) for r in rows}
    if all(v is not None for v in types.values()):
        return types, "Mean (Type) N@10 (%)", ""  # type: ignore[return-value]
    complete = [{d for d, x in r["datasets"].items() if x.get("complete") and x["scores"].get(QUALITY_METRIC)
                 is not None} for r in rows]
    common = sorted(set.intersection(*complete)) if complete else []
    if not common:
        return None
    values = {r["id"]: sum(r["datasets"][d]["scores"][QUALITY_METRIC] for d in common) / len(common) for r in rows}
    shown = ", ".join(common) if len(common) <= 4 else f"{len(common)} datasets"
    return values, "Mean (Dataset) N@10 (%)", f"over the datasets complete in every run: {shown}"


def pareto_data(rows: list[dict]) -> dict[str, Any]:
    """The Pareto points per cost (from the site's rows, ids already given), the front marked."""
    runs = [r for r in rows if not r["published"]]
    costed = [r for r in runs if (r.get("efficiency") or {}).get("seconds_per_1k_texts") is not None]
    left_out = {r["id"]: "no efficiency record" for r in runs if r not in costed}
    out: dict[str, Any] = {"quality": None, "quality_over": "", "costs": [], "left_out": left_out}
    found = _quality(costed) if costed else None
    if found is None:
        out["note"] = ("no run has a cost record" if not costed else
                       "no dataset is complete in every run with a cost record: no common quality to compare")
        return out
    quality, out["quality"], out["quality_over"] = found
    for key, label in COSTS:
        have = [r for r in costed if r["efficiency"].get(key) is not None]
        if not have:
            continue
        points = [(float(r["efficiency"][key]), float(quality[r["id"]])) for r in have]
        marks = front(points)
        out["costs"].append({"key": key, "label": label, "points": [
            {"row": r["id"], "model": r["model"], "setting": r["setting"], "cost": c, "quality": round(q, 2),
             "front": m, "synthetic": bool(r.get("synthetic"))}
            for r, (c, q), m in zip(have, points, marks, strict=True)]})
    return out


def write_pareto_figures(pareto: dict, folder: Path) -> list[dict]:
    """A scatter per cost, the front joined by a line and its runs labelled; returns figure entries."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from lmeb.leaderboard.figures import SETTING_LABELS

    figures = []
    folder.mkdir(parents=True, exist_ok=True)
    for cost in pareto.get("costs", []):
        pts = cost["points"]
        fig = Figure(figsize=(6.4, 4.2), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        rest = [p for p in pts if not p["front"]]
        on = sorted((p for p in pts if p["front"]), key=lambda p: p["cost"])
        ax.scatter([p["cost"] for p in rest], [p["quality"] for p in rest], color="#8a8f99", label="dominated")
        ax.plot([p["cost"] for p in on], [p["quality"] for p in on], marker="o", color="#d1603d",
                label="Pareto front", drawstyle="steps-post")
        for p in pts:
            ax.annotate(f"{p['model']} · {SETTING_LABELS.get(p['setting'], p['setting'])}"
                        + (" §" if p.get("synthetic") else ""), (p["cost"], p["quality"]),
                        xytext=(4, 4), textcoords="offset points", fontsize=7)
        costs = [p["cost"] for p in pts if p["cost"] > 0]
        if costs and max(costs) / min(costs) > 20:
            ax.set_xscale("log")
        ax.set_xlabel(f"{cost['label']} (lower is cheaper)")
        ax.set_ylabel(pareto["quality"])
        ax.set_title(f"Quality against cost: {cost['label']}" + (f"\n{pareto['quality_over']}" if
                     pareto["quality_over"] else ""), fontsize=9)
        ax.margins(x=0.2, y=0.15)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(fontsize=7, loc="lower right")
        name = f"pareto_{cost['key']}.png"
        fig.savefig(folder / name, dpi=100)
        figures.append({"file": f"{folder.name}/{name}",
                        "caption": f"{pareto['quality']} {pareto['quality_over']} against {cost['label']}".replace(
                            "  ", " ") + "; the Pareto front (orange) holds "
                                   "the runs no other run beats in both"})
    return figures
