"""Line readers for the four LMEB data files: corpus, queries, qrels and scene candidates.

Files are streamed line by line and every byte is hashed, so a result can name the exact data it came
from. Readers raise ``DataError`` (file and line) on bad input, or pass it to ``on_error`` and go on,
which is how ``lmeb validate`` collects every problem in one pass. Each such error carries a ``kind``
(one of ``ERROR_KINDS``) so callers can tell problems apart without parsing messages. What is checked
beyond the JSON: ids are strings or integers, texts are strings (a list or null is an error, never its
Python repr); a NUL byte, a directory or a symbolic-link loop is named as such.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from lmeb.errors import DataError

ErrorHandler = Callable[[DataError], None] | None
SCORE = re.compile(r"^-?[0-9]{1,10}$")  # ASCII digits only: int() would also take '1_0' and '١'
SCORE_LIMIT = 2**31 - 1  # pytrec_eval keeps relevance in a C int
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # a JSON escape that can make a lone surrogate

# What a reader can find wrong with a file (``DataError.kind``).
ERROR_KINDS = (
    "missing_file",  # a file the layout needs is not there
    "malformed_line",  # not JSON / not a JSON object / not 3 tab-separated fields / not UTF-8
    "missing_field",  # a required field is absent or has the wrong type
    "bad_score",  # a qrels score that is not an integer
    "duplicate_id",  # a repeated document, query or scene id, or a repeated qrels pair
)


def data_error(path: str | Path, kind: str, message: str, line: int | None = None) -> DataError:
    """A ``DataError`` tagged with its ``kind`` (see ``ERROR_KINDS``)."""
    error = DataError(path, message, line)
    error.kind = kind  # type: ignore[attr-defined]
    return error


@dataclass
class Corpus:
    """The documents of one corpus file, in file order; text = (title + ' ' + text).strip()."""

    path: Path
    ids: list[str]
    texts: list[str]
    sha256: str

    @cached_property
    def row(self) -> dict[str, int]:
        """Document id -> row index (the first occurrence wins if an id repeats)."""
        out: dict[str, int] = {}
        for i, doc_id in enumerate(self.ids):
            out.setdefault(doc_id, i)
        return out

    def __len__(self) -> int:
        return len(self.ids)


def _report(on_error: ErrorHandler, error: DataError) -> None:
    if on_error is None:
        raise error
    on_error(error)


def _not_readable(path: Path) -> str:
    """Why ``path`` is not a readable file, in words (a directory, a broken or looping link, ...)."""
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:
            return "symbolic link loop"
        except OSError as exc:
            if exc.errno == 40:  # ELOOP
                return "symbolic link loop"
            return f"broken symbolic link (to {os.readlink(path)})"
    if path.is_dir():
        return "is a directory, not a file"
    if path.exists():
        return "not a regular file"
    return "file not found"


def _lines(path: Path, digest: hashlib._Hash, on_error: ErrorHandler) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines with their numbers, hashing every byte; a missing file is one error, no lines; a
    line with NUL bytes is one error."""
    try:
        fh = path.open("rb") if path.is_file() else None
    except OSError as exc:  # e.g. permission denied
        _report(on_error, data_error(path, "missing_file", f"cannot read: {exc.strerror or exc}"))
        return
    if fh is None:
        _report(on_error, data_error(path, "missing_file", _not_readable(path)))
        return
    with fh:
        for number, raw in enumerate(fh, start=1):
            digest.update(raw)
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark is not part of the data
            if b"\0" in raw:  # json would guess UTF-16/32 from it and blame a codec
                message = "NUL bytes in the line (a binary file, or text in UTF-16/UTF-32 instead of UTF-8?)"
                _report(on_error, data_error(path, "malformed_line", message, number))
            elif raw.strip():
                yield number, raw


def read_jsonl(path: Path, required: tuple[str, ...], on_error: ErrorHandler = None) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each JSON line that has the required fields; the file hash last.

    The generator's return value (``StopIteration.value``) is the file's sha256; use ``JsonlReader``.
    """
    digest = hashlib.sha256()
    for number, raw in _lines(path, digest, on_error):
        try:
            obj = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            _report(on_error, data_error(path, "malformed_line", f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                                         number))
            continue
        except RecursionError:
            _report(on_error, data_error(path, "malformed_line", "JSON nested too deeply", number))
            continue
        except ValueError as exc:  # JSONDecodeError, or an integer of more than 4300 digits
            message = f"malformed JSON ({getattr(exc, 'msg', None) or str(exc).split(';')[0][:80]})"
            _report(on_error, data_error(path, "malformed_line", message, number))
            continue
        if _SURROGATE_ESCAPE.search(raw) and (bad := _lone_surrogate(obj)) is not None:
            message = f"field {bad!r} holds a lone UTF-16 surrogate escape (\\ud800-\\udfff): not valid text"
            _report(on_error, data_error(path, "malformed_line", message, number))
            continue
        if not isinstance(obj, dict):
            _report(on_error, data_error(path, "malformed_line", "expected a JSON object", number))
            continue
        missing = [k for k in required if k not in obj]
        if missing:
            names = ", ".join(repr(m) for m in missing)
            _report(on_error, data_error(path, "missing_field", f"missing field {names}", number))
            continue
        wrong = next((k for k in required if k in ID_FIELDS and not _is_id(obj[k])), None)
        if wrong is not None:
            message = f"field {wrong!r} must be a string or an integer, found {_json_type(obj[wrong])}"
            _report(on_error, data_error(path, "missing_field", message, number))
            continue
        yield number, obj
    return digest.hexdigest()


class JsonlReader:
    """Iterate a JSONL file like ``read_jsonl`` and keep its sha256 once done."""

    def __init__(self, path: Path, required: tuple[str, ...], on_error: ErrorHandler = None) -> None:
        self._gen = read_jsonl(path, required, on_error)
        self.sha256 = ""

    def __iter__(self) -> Iterator[tuple[int, dict]]:
        self.sha256 = yield from self._gen


ID_FIELDS = ("id", "scene_id")  # checked by read_jsonl: a string or an integer


def _lone_surrogate(obj: dict) -> str | None:
    """The first field of ``obj`` whose string (or list of strings) cannot be written as UTF-8, else None."""
    for key, value in obj.items():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    return str(key)
    return None


def _is_id(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _json_type(value: object) -> str:
    """How a JSON value's type reads in a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    names = {str: "a string", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def as_id(value: object) -> str:
    """An id as a string: a string as given, an integer by ``str`` (``read_jsonl`` rejects anything else)."""
    return value if isinstance(value, str) else str(value)


def _text_problem(obj: dict, name: str, nullable: bool = False) -> str | None:
    """Why ``obj[name]`` is not usable text (None if it is, or is absent): it must be a string."""
    if name not in obj or isinstance(obj[name], str) or (nullable and obj[name] is None):
        return None
    return f"field {name!r} must be a string, found {_json_type(obj[name])}"


def text_part(value: object) -> str:
    """A title or text field as a string (None -> "")."""
    return "" if value is None else str(value)


def document_text(title: object, text: object) -> str:
    """A document's text as every reader gives it: ``(title + ' ' + text).strip()``, a missing part as ''."""
    return (text_part(title) + " " + text_part(text)).strip()


def read_corpus(path: Path, on_error: ErrorHandler = None) -> Corpus:
    """Documents as (id, title + ' ' + text stripped); duplicate ids are errors."""
    ids: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    reader = JsonlReader(path, ("id",), on_error)
    for number, obj in reader:
        doc_id = as_id(obj["id"])
        if doc_id in seen:
            _report(on_error, data_error(path, "duplicate_id", f"duplicate document id {doc_id!r}", number))
            continue
        if "title" not in obj and "text" not in obj:
            _report(on_error, data_error(path, "missing_field", "missing field 'text'", number))
            continue
        problem = _text_problem(obj, "text") or _text_problem(obj, "title", nullable=True)
        if problem:
            _report(on_error, data_error(path, "missing_field", problem, number))
            continue
        seen.add(doc_id)
        ids.append(doc_id)
        texts.append(document_text(obj.get("title"), obj.get("text")))
    return Corpus(path=path, ids=ids, texts=texts, sha256=reader.sha256)


def read_queries(
    path: Path, on_error: ErrorHandler = None, lines: dict[str, int] | None = None
) -> tuple[list[str], list[str], str]:
    """Query ids and texts as given; duplicate ids are errors. Returns (ids, texts, sha256).

    ``lines``, if given, receives each query id's line number (for messages naming the line).
    """
    ids: list[str] = []
    texts: list[str] = []
    seen: dict[str, int] = {} if lines is None else lines
    reader = JsonlReader(path, ("id", "text"), on_error)
    for number, obj in reader:
        problem = _text_problem(obj, "text")
        if problem:
            _report(on_error, data_error(path, "missing_field", problem, number))
            continue
        query_id = as_id(obj["id"])
        if query_id in seen:
            _report(on_error, data_error(path, "duplicate_id", f"duplicate query id {query_id!r}", number))
            continue
        seen[query_id] = number
        ids.append(query_id)
        texts.append(text_part(obj["text"]))
    return ids, texts, reader.sha256


def read_qrels(
    path: Path, on_error: ErrorHandler = None, lines: dict[tuple[str, str], int] | None = None
) -> tuple[dict[str, dict[str, int]], str]:
    """``query-id<TAB>corpus-id<TAB>score`` rows, no header; scores must be integers.

    ``lines``, if given, receives each (query id, corpus id) pair's line number.
    """
    qrels: dict[str, dict[str, int]] = {}
    digest = hashlib.sha256()
    for number, raw in _lines(path, digest, on_error):
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            _report(on_error, data_error(path, "malformed_line", "not UTF-8 text", number))
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            message = f"expected 3 tab-separated fields (query-id, corpus-id, score), found {len(fields)}"
            _report(on_error, data_error(path, "malformed_line", message, number))
            continue
        query_id, doc_id, score = (f.strip() for f in fields)
        if not query_id or not doc_id:
            _report(on_error, data_error(path, "missing_field", "empty query-id or corpus-id", number))
            continue
        if not SCORE.match(score) or abs(int(score)) > SCORE_LIMIT:
            hint = " (qrels.tsv has no header row)" if number == 1 and score.lower() == "score" else ""
            what = (f"is out of range (at most {SCORE_LIMIT})" if score.lstrip("-").isascii() and
                    score.lstrip("-").isdigit() else "is not an integer")
            _report(on_error, data_error(path, "bad_score", f"score {score[:40]!r} {what}{hint}", number))
            continue
        value = int(score)
        row = qrels.setdefault(query_id, {})
        if doc_id in row:
            message = f"duplicate qrels row for ({query_id}, {doc_id})"
            _report(on_error, data_error(path, "duplicate_id", message, number))
            continue
        row[doc_id] = value
        if lines is not None:
            lines[(query_id, doc_id)] = number
    return qrels, digest.hexdigest()


def read_candidates(
    path: Path, on_error: ErrorHandler = None, lines: dict[str, int] | None = None
) -> tuple[dict[str, list[str]], str]:
    """``{scene_id, candidate_doc_ids}`` lines -> scene id -> candidate ids; a repeated scene is an error.

    ``lines``, if given, receives each scene id's line number.
    """
    scenes: dict[str, list[str]] = {}
    reader = JsonlReader(path, ("scene_id", "candidate_doc_ids"), on_error)
    for number, obj in reader:
        scene = as_id(obj["scene_id"])
        docs = obj["candidate_doc_ids"]
        if not isinstance(docs, list) or not all(_is_id(d) for d in docs):
            message = "field 'candidate_doc_ids' must be a list of string or integer ids"
            _report(on_error, data_error(path, "missing_field", message, number))
            continue
        if scene in scenes:
            _report(on_error, data_error(path, "duplicate_id", f"duplicate scene id {scene!r}", number))
            continue
        scenes[scene] = [as_id(d) for d in docs]
        if lines is not None:
            lines[scene] = number
    return scenes, reader.sha256
