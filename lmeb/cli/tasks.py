"""List the LMEB datasets: memory type, granularity, subsets, on-disk layout and candidates rule.

``--json`` prints one JSON object per dataset (JSON lines) with its subsets and instructions, for
scripts. ``--tasks``/``--type`` narrow the list the way they narrow ``lmeb run``.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

from lmeb.cli.options import add_selection, selection
from lmeb.tasks.registry import MEMORY_TYPES, Task
from lmeb.wording import counted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_selection(parser, extra_tasks_flags=("--dataset",))
    parser.add_argument("--json", action="store_true", help="one JSON object per dataset (JSON lines)")


def task_record(task: Task, subsets: tuple[str, ...] | None = None) -> dict:
    """Everything the registry knows about a dataset, as plain JSON values (subsets last; only ``subsets``
    when given)."""
    chosen = [s for s in task.subsets if subsets is None or s.name in subsets]
    return {
        "name": task.name,
        "memory_type": task.memory_type,
        "granularity": task.granularity,
        "path": task.path,
        "layout": task.layout,
        "candidates": task.candidates,
        "scene_id": task.scene_id,
        "main_score": task.main_score,
        "official_k_values": list(task.official_k_values),
        "mteb_name": task.mteb_name,
        "mteb_hf_dataset": task.mteb_hf_dataset,
        "mteb_revision": task.mteb_revision,
        "mteb_k_values": list(task.mteb_k_values),
        "paper_position": task.paper_position,
        "paper_table1": task.paper_table1,
        "description": task.description,
        "reference": task.reference,
        "license": task.license,
        "citation": task.citation,
        "num_subsets": len(task.subsets),
        "subsets": [{"name": s.name, "mteb_name": s.mteb_name, "instruction": s.instruction} for s in chosen],
    }


def main(args: argparse.Namespace) -> int:
    selections = selection(args)
    if args.json:
        for sel in selections:
            print(json.dumps(task_record(sel.task, sel.subsets), ensure_ascii=False))
        return 0
    tasks = [sel.task for sel in selections]
    count = {sel.task.name: len(sel.subsets) for sel in selections}
    header = ("dataset", "memory type", "granularity", "subsets", "layout", "candidates")
    rows = [
        (
            t.name,
            t.memory_type,
            t.granularity,
            str(count[t.name]) if count[t.name] == len(t.subsets) else f"{count[t.name]}/{len(t.subsets)}",
            t.layout,
            f"{t.candidates} by {t.scene_id}" if t.candidates else "-",
        )
        for t in tasks
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(
                cell.rjust(w) if i == 3 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    print()
    per_type: dict[str, list[Task]] = defaultdict(list)
    for t in tasks:
        per_type[t.memory_type].append(t)
    for memory_type in MEMORY_TYPES:
        if per_type[memory_type]:
            group = per_type[memory_type]
            print(f"{memory_type}: {counted(len(group), 'dataset')}, "
                  f"{counted(sum(count[t.name] for t in group), 'task')}")
    print(f"all: {counted(len(tasks), 'dataset')}, {counted(sum(count.values()), 'task')}")
    return 0
