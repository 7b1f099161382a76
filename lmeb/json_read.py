"""Reading a JSON file lmeb wrote (results, per-query sidecars, cache indexes) that may have been damaged.

``read_json`` turns every way such a file can be broken — unreadable, random bytes (not UTF-8), not JSON,
nested deeper than the parser's recursion limit — into one ``LmebError`` naming the file; a missing file
stays ``FileNotFoundError`` (callers treat "not there" apart from "damaged"). ``clean_cache_index`` keeps
what is usable of an embedding-cache ``index.json``: entries whose name is a plain shard name inside the
folder and whose value is an object; the rest are named as problems (``lmeb cache prune`` rewrites it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lmeb.errors import LmebError

SHARD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")  # what lmeb names shards: <pid>-<uuid hex>


def parse_json(data: bytes | str, where: str | Path) -> Any:
    """``data`` parsed, or one line naming ``where`` (bad UTF-8, bad JSON, nesting too deep)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text)
    except UnicodeDecodeError:
        raise LmebError(f"{where}: not a JSON file (not UTF-8 text: a damaged file)") from None
    except RecursionError:
        raise LmebError(f"{where}: JSON nested too deeply to read (a damaged file)") from None
    except ValueError as exc:
        raise LmebError(f"{where}: not valid JSON ({exc}); a damaged or truncated file") from None


def read_json(path: str | Path) -> Any:
    """The JSON value of ``path`` (``FileNotFoundError`` if absent; any other failure one ``LmebError``)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise LmebError(f"{path}: unreadable ({exc.strerror or exc.__class__.__name__})") from None
    return parse_json(data, path)


def read_json_or(path: str | Path, default: Any = None) -> Any:
    """The JSON value of ``path``, or ``default`` when it is missing, unreadable or damaged: for files lmeb
    only consults (memos, probes, model configs), where a damaged one just means "not known"."""
    try:
        return read_json(path)
    except (OSError, LmebError):
        return default


def clean_cache_index(raw: Any, path: str | Path) -> tuple[dict[str, Any], list[str]]:
    """``{"meta": dict, "shards": {name: dict}}`` from a parsed index, and what had to be left out."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        return {"meta": {}, "shards": {}}, [f"{path}: not a JSON object; rebuilt from the shards on disk"]
    meta = raw.get("meta") or {}
    if not isinstance(meta, dict):
        problems.append(f"{path}: 'meta' is {type(meta).__name__}, not an object; dropped")
        meta = {}
    shards = raw.get("shards") or {}
    if not isinstance(shards, dict):
        problems.append(f"{path}: 'shards' is {type(shards).__name__}, not an object; rebuilt from the shards on disk")
        shards = {}
    kept = {}
    for name, entry in shards.items():
        if not SHARD_NAME.fullmatch(name):  # '../../victim', '/abs', 'x\n': never touched
            problems.append(f"{path}: shard entry {name!r} is not a shard name inside the cache folder; dropped")
        elif not isinstance(entry, dict):
            problems.append(f"{path}: shard entry {name!r} is {json.dumps(entry)[:40]}, not an object; dropped "
                            "(its files are checked again as unindexed shards)")
        else:
            kept[name] = entry
    index = {**raw, "meta": meta, "shards": kept}
    try:  # written back as UTF-8 by the next update: a lone surrogate escape would fail there
        json.dumps(index, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, RecursionError):
        return {"meta": {}, "shards": {}}, [*problems, f"{path}: holds text that is not valid UTF-8; rebuilt from "
                                                       "the shards on disk"]
    return index, problems
