"""Generate tasks/<MemoryType>/<Dataset>.yaml from the LMEB spec (run once; the YAML is then the source).

Usage: python scripts/make_task_yaml.py [../shared/lmeb_spec/datasets.json] [tasks]
The generated files are reviewed by hand like code; rerun only to start again from the spec.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (citations, descriptions) so the YAML reads like the spec."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _list(dumper: yaml.SafeDumper, value: list) -> yaml.SequenceNode:
    flow = all(isinstance(v, (int, float, str)) for v in value) and len(value) < 12
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(list, _list)


def task_document(ds: dict, position: int) -> dict:
    """One dataset of datasets.json as the task YAML document (position = its place in the paper's tables)."""
    subsets = [
        {"name": name, "mteb_name": mteb_name, "instruction": ds["instructions"][name]}
        for name, mteb_name in zip(ds["subsets"], ds["mteb_subsets"], strict=True)
    ]
    return {
        "name": ds["name"],
        "paper_position": position,
        "memory_type": ds["memory_type"],
        "granularity": ds["granularity"],
        "description": " ".join(ds["description"].split()),
        "reference": ds["reference"],
        "license": ds["license"],
        "data": {
            "path": ds["path"],
            "layout": ds["layout"],
            "candidates": ds["candidates"],
            "scene_id": ds["scene_id"],
        },
        "main_score": ds["main_score"],
        "official_k_values": ds["official_k_values"],
        "mteb": {
            "name": ds["mteb_name"],
            "hf_dataset": ds["mteb_hf_dataset"]["repo"],
            "revision": ds["mteb_hf_dataset"]["revision"],
            "k_values": ds["mteb_k_values"],
        },
        "paper_table1": ds["paper_table1"],
        "citation": ds["citation"].strip() + "\n",
        "subsets": subsets,
    }


def main(argv: list[str]) -> None:
    spec = Path(argv[0] if argv else "../shared/lmeb_spec/datasets.json")
    out = Path(argv[1] if len(argv) > 1 else "tasks")
    for position, ds in enumerate(json.loads(spec.read_text())["datasets"], start=1):
        path = out / ds["memory_type"].lower() / f"{ds['name']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        header = f"# {ds['name']}: LMEB {ds['memory_type']} memory, {len(ds['subsets'])} subsets.\n"
        body = yaml.dump(task_document(ds, position), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
        path.write_text(header + body)
        print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
