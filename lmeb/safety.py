"""Security rules every writer and recorder of lmeb goes through (docs/reliability.md says them in words).

* ``inside(root, name, what)``: a name read from a file or an option (a model name, a revision, a cache
  index entry) becomes a path under ``root`` only if it stays there: no absolute path, no ``..`` step, no
  symlink out. One check, before any read, write or delete.
* ``safe_name(name, what)``: a single path component (no separator, not ``.``/``..``, no NUL).
* ``redact_url(url)``: an API address as it may be recorded (results, cache index, leaderboard): scheme,
  host, port and path; user, password, query string and fragment are dropped.
* ``csv_cell(value)``: a CSV cell a spreadsheet will not run as a formula (OWASP CSV injection): a cell
  starting with ``= + - @``, a tab or a carriage return gets a leading ``'``; plain numbers stay as they are.
* ``remote_code_error(...)``: the one message for a model whose own Python code would run without consent.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from lmeb.errors import LmebError

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")


def safe_name(name: str, what: str) -> str:
    """``name`` if it is one usable path component, else a one-line error naming ``what`` it is."""
    text = str(name)
    bad = (not text.strip() or text.strip() in (".", "..") or "/" in text or "\\" in text or "\0" in text
           or (os.sep in text) or (os.altsep is not None and os.altsep in text))
    if bad:
        raise LmebError(f"{what} {text!r} cannot be a folder or file name (no '/', '\\', '..' or empty names)")
    return text


def inside(root: str | Path, name: str | Path, what: str) -> Path:
    """``root / name`` when it stays inside ``root`` (symlinks resolved), else a one-line error.

    ``name`` may have several components (``org__model/wo_inst``); absolute names and ``..`` steps are
    refused before anything touches the disk.
    """
    text = str(name)
    steps = re.split(r"[\\/]", text)
    if not text or "\0" in text or Path(text).is_absolute() or text.startswith(("/", "\\")) or ".." in steps:
        raise LmebError(f"{what} {text!r} would leave {root}: absolute paths and '..' are not allowed")
    base = Path(root).expanduser()
    path = base / text
    try:
        real_base, real = base.resolve(), path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise LmebError(f"{what} {text!r} under {root}: cannot resolve ({exc})") from None
    if real != real_base and real_base not in real.parents:
        raise LmebError(f"{what} {text!r} leads outside {root} (to {real}) through a symbolic link")
    return path


def redact_url(url: str | None) -> str | None:
    """``url`` without credentials, query string or fragment (``None`` stays ``None``)."""
    if url is None:
        return None
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # an unparsable port or bracket: keep nothing that could be a secret
        return "<unparsable URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{port}" if port is not None else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def csv_cell(value: object) -> object:
    """``value`` as a CSV cell that no spreadsheet runs as a formula (numbers, also ``-1.5``, unchanged)."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START) or _NUMBER.match(value):
        return value
    return "'" + value


def remote_code_error(repository: str, who: str) -> LmebError:
    """The one-line refusal for a model that would run its own code: which repository, how to allow it."""
    return LmebError(f"{who} needs the Python code shipped with {repository!r} (trust_remote_code); lmeb runs no "
                     "model code without consent: pass --trust-remote-code (trust_remote_code=True in Python) "
                     "if you trust that repository")
