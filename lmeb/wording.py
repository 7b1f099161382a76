"""How counts read in messages: ``counted(1, "dataset")`` -> "1 dataset", ``counted(3, "dataset")`` ->
"3 datasets" (one rule, so no line says "1 datasets" or "2 dataset(s)")."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun, singular for exactly one; ``plural`` where adding "s" is wrong ("query" -> "queries")."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
