"""The efficiency views: what each run cost (``lmeb.engine.efficiency`` blocks of the results files) as a ``Table``.

``efficiency``: a row per run (model, setting), its datasets' blocks summed (``--dataset``: that dataset
only); ``efficiency-datasets``: a row per run and dataset. Results written before efficiency was recorded
have no block: their rows show "-" and a footnote counts them. Lower is better for most columns, so no
best/second marks.
"""

from __future__ import annotations

from typing import Any

from lmeb.engine.efficiency import combine
from lmeb.errors import LmebError
from lmeb.report.aggregate import by_run
from lmeb.report.table import Cell, Column, Table
from lmeb.results.dataset_result import DatasetResult
from lmeb.results.identity import source_marks
from lmeb.tasks.settings import SETTINGS

EFFICIENCY_VIEWS = ("efficiency", "efficiency-datasets")
COLUMNS: tuple[tuple[Column, str, str, float], ...] = (  # (column, block key, format, scale)
    (("Work", "Texts"), "texts", ".0f", 1.0),
    (("Work", "Tokens"), "tokens", ".0f", 1.0),
    (("Time", "Seconds"), "seconds", ".2f", 1.0),
    (("Time", "Texts/s"), "texts_per_s", ".1f", 1.0),
    (("Time", "Tokens/s"), "tokens_per_s", ".0f", 1.0),
    (("Time", "s/1k texts"), "seconds_per_1k_texts", ".2f", 1.0),
    (("Memory", "Peak RSS MB"), "peak_rss_mb", ".0f", 1.0),
    (("Memory", "Peak GPU MB"), "peak_gpu_mb", ".0f", 1.0),
    (("Model", "Params (M)"), "parameters", ".1f", 1e-6),
)
DEVICE: Column = ("Model", "Device")
FUSION: Column = ("Time", "Fusion s")  # hybrids only (lmeb.engine.hybrid); the column shows when a row has it
NOTE = ("Texts: texts run through the model (encoder: unique texts encoded, cache hits not counted; BM25: "
        "documents indexed + queries; reranker: pairs); Tokens: as the model's tokenizer or API counts them; "
        "Seconds: wall time in the model (encode, or search for BM25); peaks are the process's maxima")


def run_efficiency(results: list[DatasetResult]) -> dict[str, Any] | None:
    """One run's cost: the ``efficiency`` blocks of its datasets summed (None when none has one)."""
    return combine(r.provenance.get("efficiency") for r in results)


def _fill(t: Table, labels: tuple[str, ...], block: dict[str, Any] | None) -> None:
    row = t.row(labels)
    if block is None:
        return
    for col, key, _, scale in COLUMNS:
        if block.get(key) is not None:
            row.cells[col] = Cell(float(block[key]) * scale)
    row.cells[DEVICE] = Cell(text=str(block.get("device") or "-"))
    if block.get("fusion_seconds") is not None:
        row.cells[FUSION] = Cell(float(block["fusion_seconds"]))


def efficiency_table(results: list[DatasetResult], view: str = "efficiency", dataset: str | None = None) -> Table:
    """The efficiency view ``view`` of ``results`` (``dataset``: only that dataset's files)."""
    if view not in EFFICIENCY_VIEWS:
        raise LmebError(f"unknown efficiency view {view!r} (choose from {', '.join(EFFICIENCY_VIEWS)})")
    if dataset is not None:
        from lmeb.tasks.registry import get_task

        name = get_task(dataset).name
        results = [r for r in results if r.task_name == name]
        if not results:
            raise LmebError(f"no results for dataset {name}")
    per_dataset = view == "efficiency-datasets"
    hybrid = any((r.provenance.get("efficiency") or {}).get("fusion_seconds") is not None for r in results)
    columns = [c for c, *_ in COLUMNS] + [DEVICE] + ([FUSION] if hybrid else [])
    where = f" on {results[0].task_name}" if dataset is not None else ""
    t = Table(columns, title=f"LMEB: efficiency per {'dataset' if per_dataset else 'run'}{where}", view=view,
              metric="efficiency", unit="mixed", ranked=False,
              formats={FUSION: ".2f", **{c: f for c, _, f, _ in COLUMNS}},
              label_names=("model", "setting", "dataset") if per_dataset else ("model", "setting", "source"))
    runs = by_run(results)
    missing = 0
    for model, setting in sorted(runs, key=lambda k: (k[0], SETTINGS.index(k[1]) if k[1] in SETTINGS else 9)):
        files = runs[(model, setting)]
        missing += sum(1 for r in files if not r.provenance.get("efficiency"))
        if per_dataset:
            for r in sorted(files, key=lambda r: r.task_name):
                _fill(t, (model, setting, r.task_name), r.provenance.get("efficiency"))
                t.row((model, setting, r.task_name)).marks = source_marks([r])
        else:
            _fill(t, (model, setting, "run"), run_efficiency(files))
            t.row((model, setting, "run")).marks = source_marks(files)  # § / ‡: what data the cost is of
    t.footnotes.append(NOTE)
    if hybrid:
        t.footnotes.append("Fusion s: a hybrid's time fusing its parts' lists; its Seconds are its parts' model "
                           "time plus that")
    if missing:
        t.footnotes.append(f"{missing} results file(s) carry no efficiency record (written before lmeb recorded it)")
    return t
