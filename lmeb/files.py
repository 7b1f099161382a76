"""Atomic file writes: every file lmeb leaves behind is either the old one or the complete new one.

Results, TREC runs, embedding shards and reranker caches all go through
``atomic_path``: write to a temporary file in the same folder, flush it to disk, then rename it over
the target. A crash or Ctrl-C in between leaves no partial file (the temporary one is removed).
The new file gets the permissions the process's umask gives (``mkstemp`` alone would make it 0600).

A ``kill -9`` cannot run that clean-up, so a temporary file is named ``.<target>.<pid>.<random>.tmp``:
``clean_stale_temporaries`` removes those whose process is gone (or that are older than a day).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

STALE_SECONDS = 24 * 3600  # a temporary file this old is stale whatever its pid says (pids are reused)
_TMP_NAME = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")


def current_umask() -> int:
    """The process's umask (read without changing it where Linux allows, else set and restored)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is synced and renamed to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (a process of another user counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def is_stale_temporary(path: Path, now: float | None = None) -> bool:
    """A temporary file left by a process that is gone (pid in its name) or older than ``STALE_SECONDS``."""
    if not path.name.endswith(".tmp"):
        return False
    try:
        age = (now or time.time()) - path.lstat().st_mtime
    except OSError:
        return False
    if age > STALE_SECONDS:
        return True
    match = _TMP_NAME.match(path.name)
    return bool(match) and int(match.group(1)) != os.getpid() and not pid_alive(int(match.group(1)))


def stale_temporaries(folder: str | Path, recursive: bool = True) -> list[Path]:
    """The stale temporary files under ``folder`` (see ``is_stale_temporary``)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now = time.time()
    paths = folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")
    return [p for p in paths if p.is_file() and is_stale_temporary(p, now)]


def clean_stale_temporaries(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Delete the stale temporary files under ``folder`` (see ``stale_temporaries``); returns them."""
    removed = []
    for path in stale_temporaries(folder, recursive):
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


def writable_folder(folder: str | Path, what: str, hint: str) -> Path:
    """Create ``folder`` and write (then delete) a probe file in it: a read-only folder, a pseudo-filesystem
    (``/proc/...``) or a file in the way is one line (``{folder}: cannot write {what} there (...); {hint}``)
    before any work, never a traceback halfway through."""
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".lmeb-write-check-", suffix=".tmp")
        try:
            os.write(fd, b"lmeb")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        from lmeb.errors import LmebError

        reason = exc.strerror or exc.__class__.__name__
        raise LmebError(f"{folder}: cannot write {what} there ({reason}); {hint}") from None
    return folder
