"""One small value type for every table lmeb shows: ``lmeb table``, the leaderboard and ``lmeb compare``.

A ``Table`` is columns (group, name), rows (labels + a cell per column), a title and footnotes. A
``Cell`` holds a number, or the ``n/N`` count of an incomplete group (no number: no mean over fewer
parts), plus marks (footnote signs). ``lmeb.report.render`` writes a Table as text, Markdown, CSV, LaTeX or
JSON; ``Table.to_frame`` gives the numbers as a pandas DataFrame (the public ``lmeb.report.views.table``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

INCOMPLETE_MARK = "*"
MISSING = "-"

Column = tuple[str, str]  # (group, name)


@dataclass(frozen=True)
class Cell:
    """A number, or ``parts`` = "n/N" parts complete of an incomplete group (then no number), or nothing."""

    value: float | None = None
    parts: str | None = None
    marks: str = ""
    text: str | None = None  # a fixed text for a non-numeric cell (e.g. a subset count "2/5")

    @property
    def complete(self) -> bool:
        return self.parts is None

    def show(self, fmt: str = ".2f") -> str:
        """"61.20", "3/5*" (incomplete: n of N parts, no mean), a fixed text, or "-" (no result)."""
        if self.parts is not None:
            return self.parts + INCOMPLETE_MARK
        if self.text is not None:
            return self.text
        if self.value is None or math.isnan(self.value):
            return MISSING
        return f"{self.value:{fmt}}" + self.marks


EMPTY = Cell()


@dataclass
class Row:
    """One row: its labels (e.g. model, setting, source), its cells, and "n/N" complete parts of the row."""

    labels: tuple[str, ...]
    cells: dict[Column, Cell] = field(default_factory=dict)
    complete: str | None = None
    marks: str = ""  # shown after the row's second label (e.g. the setting of a model that ignores instructions)
    ranked: bool = True  # False: never a best / second mark (a run on synthetic data)


@dataclass
class Table:
    """Columns, rows, title and footnotes; ``label_names`` name the row labels (index levels of the frame)."""

    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    title: str = ""
    footnotes: list[str] = field(default_factory=list)
    label_names: tuple[str, ...] = ("model", "setting", "source")
    view: str = ""
    metric: str = ""
    unit: str = "percent"
    complete_unit: str = "datasets"  # what a row's ``complete`` counts
    formats: dict[Column, str] = field(default_factory=dict)  # per-column number format (default ".2f")
    ranked: bool = True  # best / second marks in md and LaTeX

    def row(self, labels: tuple[str, ...]) -> Row:
        """The row with these labels, added (empty) if absent."""
        for r in self.rows:
            if r.labels == labels:
                return r
        self.rows.append(Row(labels))
        return self.rows[-1]

    def cell(self, row: Row, col: Column) -> Cell:
        return row.cells.get(col, EMPTY)

    def show(self, row: Row, col: Column) -> str:
        return self.cell(row, col).show(self.formats.get(col, ".2f"))

    def drop_empty_columns(self) -> list[Column]:
        """Remove the columns no row has a cell for (no number, no count); returns them."""
        empty = [c for c in self.columns if all(self.cell(r, c) == EMPTY for r in self.rows)]
        self.columns = [c for c in self.columns if c not in empty]
        return empty

    def best_marks(self) -> dict[tuple[tuple[str, ...], Column], int]:
        """{(row labels, column): 1 best | 2 second} per column, over numbers compared at 2 decimals.

        Ties share the mark; the second is the next distinct value. A column with fewer than two
        numbers gets no marks; incomplete cells (counts) never get one.
        """
        marks: dict[tuple[tuple[str, ...], Column], int] = {}
        if not self.ranked:
            return marks
        for col in self.columns:
            cells = {r.labels: round(c.value, 2) for r in self.rows if r.ranked and (c := self.cell(r, col)).complete
                     and c.value is not None and not math.isnan(c.value)}
            if len(cells) < 2:
                continue
            top = sorted(set(cells.values()), reverse=True)[:2]
            for labels, v in cells.items():
                if v in top:
                    marks[(labels, col)] = top.index(v) + 1
        return marks

    def to_frame(self) -> pd.DataFrame:
        """The numbers as a DataFrame: index = row labels, columns (group, column), NaN where no number.

        ``attrs["table"]`` keeps this Table, so ``lmeb.report.render.render`` can write the frame with its counts.
        """
        index = pd.MultiIndex.from_tuples([r.labels for r in self.rows], names=list(self.label_names))
        cols = pd.MultiIndex.from_tuples(self.columns, names=["group", "column"])
        data = [[_number(self.cell(r, c)) for c in self.columns] for r in self.rows]
        df = pd.DataFrame(data, index=index, columns=cols, dtype=float)
        df.attrs["table"] = self
        return df


def _number(cell: Cell) -> float:
    return math.nan if cell.value is None or not cell.complete else float(cell.value)


def as_table(obj: Any) -> Table:
    """A Table, or the Table behind a frame made by ``Table.to_frame``."""
    if isinstance(obj, Table):
        return obj
    table = getattr(obj, "attrs", {}).get("table")
    if not isinstance(table, Table):
        raise TypeError("expected a lmeb Table or a frame from lmeb.report.views.table")
    return table
