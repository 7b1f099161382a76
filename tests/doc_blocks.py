"""The fenced code blocks of a Markdown page: the one parser of the tests that run README.md and docs/."""

from __future__ import annotations

import re
import shlex

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def fenced_blocks(text: str) -> list[tuple[str, int, str]]:
    """(language, line of the first body line, body) of every fenced block, in order."""
    return [(m.group(1), text.count("\n", 0, m.start(2)) + 1, m.group(2)) for m in _FENCE.finditer(text)]


def blocks(text: str, languages: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(language, body) of every fenced block (of ``languages`` only, when given), in order."""
    return [(lang, body) for lang, _, body in fenced_blocks(text) if not languages or lang in languages]


def bodies(text: str, language: str) -> list[str]:
    """The bodies of the ``language`` blocks, in order."""
    return [body for _, body in blocks(text, (language,))]


def steps(text: str) -> list[tuple[str, str, list[str]]]:
    """The runnable steps of a page in order: ``("python", code, [])`` for a python block and
    ``("lmeb", line, argv)`` for each ``lmeb`` line of a bash block (argv without ``lmeb``, comments dropped)."""
    out: list[tuple[str, str, list[str]]] = []
    for lang, body in blocks(text, ("bash", "python")):
        if lang == "python":
            out.append(("python", body, []))
            continue
        out += [("lmeb", line, shlex.split(line, comments=True)[1:]) for line in body.splitlines()
                if line.startswith("lmeb ")]
    return out
