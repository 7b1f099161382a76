"""Security rules every writer and recorder of lmeb goes through (docs/reliability.md says them in words).

* ``safe_name(name, what)``: a name read from a file or an option (a model name, a setting, a revision, a
  cache index entry) becomes a path only as one path component: no separator, not ``.``/``..``, no NUL,
  so it cannot leave its folder. One check, before any read, write or delete.
* ``redact_url(url)``: an API address as it may be recorded (results, cache index, leaderboard): scheme,
  host, port and path; user, password, query string and fragment are dropped.
* ``csv_cell(value)``: a CSV cell a spreadsheet will not run as a formula (OWASP CSV injection): a cell
  starting with ``= + - @``, a tab or a carriage return gets a leading ``'``; plain numbers stay as they are.
* ``remote_code_error(...)``: the one message for a model whose own Python code would run without consent.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from lmeb.errors import LmebError

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")


def safe_name(name: str, what: str) -> str:
    """``name`` if it is one usable path component, else a one-line error naming ``what`` it is."""
    text = str(name)
    bad = not text.strip() or text.strip() in (".", "..") or any(c in text for c in "/\\\0")  # every OS's separators
    if bad:
        raise LmebError(f"{what} {text!r} cannot be a folder or file name (no '/', '\\', '..' or empty names)")
    return text


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
