"""List the paper models lmeb has official settings for (``--preset NAME``): name, the paper's spelling,
hub id, pooling, normalisation, max length, precision, padding side and batch size per setting.

``--preset`` (and ``--model``) take the name, the paper's row name (``bge-m3 (Dense)``,
``KaLM-Embedding-V2.5``), or the hub id, in any case. ``--json`` prints one JSON object per preset
(JSON lines) with the encoder options and the run scripts' raw settings of both settings.
"""

from __future__ import annotations

import argparse
import json

from lmeb.models.presets import Preset, presets
from lmeb.tasks.settings import SETTINGS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per preset (JSON lines)")


def preset_record(preset: Preset) -> dict:
    """A preset as plain JSON values: names, hub id, and per setting the encoder options and raw settings."""
    return {
        "name": preset.name,
        "paper_name": preset.paper_name,
        "aliases": list(preset.aliases),
        "hub_id": preset.hub_id,
        "settings": {
            s: {"encoder_options": preset.encoder_options(s), "official": preset.official(s)} for s in SETTINGS
        },
    }


def main(args: argparse.Namespace) -> int:
    table = presets()
    if args.json:
        for preset in table.values():
            print(json.dumps(preset_record(preset), ensure_ascii=False))
        return 0
    header = ("preset", "paper name", "hub id", "pooling", "norm", "max len", "precision", "padding",
              "batch wo/w inst")
    rows = []
    for p in table.values():
        o = p.encoder_options("wo_inst")
        batches = "/".join(str(p.encoder_options(s)["batch_size"]) for s in SETTINGS)
        rows.append((p.name, p.paper_name if p.aliases else "=", p.hub_id or "-", o["pooling"],
                     "yes" if o["normalize"] else "no", str(o["max_length"]), o["precision"], o["padding_side"],
                     batches))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print(f"\n{len(rows)} presets (paper name '=' = the preset name). Each has both settings, wo_inst and w_inst "
          "(w_inst prefixes queries with the instruction template; --json shows every setting).\n"
          "Use: lmeb run --preset NAME [--model-path DIR] (NAME: preset, paper name or hub id, any case)")
    return 0
