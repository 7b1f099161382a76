"""``lmeb.Results``: dataset results in memory with their views (what ``lmeb.evaluate`` returns and
``lmeb.load_results`` reads back).

It sits above both the results files (``lmeb.results.dataset_result``) and the tables (``lmeb.report.views``), so neither of
those has to import the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lmeb.errors import LmebError
from lmeb.report.render import render
from lmeb.report.views import build_table, table
from lmeb.results.dataset_result import DatasetResult, read_results, result_path, results_lock, write_dataset_result
from lmeb.tasks.registry import get_task


def load_results(roots: Iterable[Path | str] | Path | str, per_query: bool = False) -> Results:
    """All dataset results under the given directory (or directories), as ``Results``."""
    return Results(read_results(roots, per_query))


class Results(list[DatasetResult]):
    """Dataset results in memory (what ``lmeb.evaluate`` returns and ``load_results`` reads): every metric
    per subset and, where read or computed, per query; views as pandas DataFrames; ``save`` writes them."""

    def __init__(self, items: Iterable[DatasetResult] = (), *, name: str | None = None, setting: str | None = None,
                 summaries: list[Any] | None = None, seconds: float | None = None) -> None:
        super().__init__(items)
        self.name = name  # lmeb.evaluate sets these: the model's results name, the setting,
        self.setting = setting
        self.summaries = summaries or []  # what each dataset's run did (lmeb.engine.runner.DatasetSummary)
        self.seconds = seconds  # and the wall time

    def table(self, view: str | None = None, metric: str = "ndcg_at_10", **options: Any) -> Any:
        """A view as a DataFrame (``lmeb.report.views.table``; percent, NaN where there is no number).

        By default the view that shows what was run: the paper's layout when every run covers all the
        datasets, else a column per dataset run, with the columns no row has a number for (the type and
        overall means of a partial run: no mean over fewer parts) left out. ``show`` renders the same
        table as text, where an incomplete group reads ``n/N*``. A run of some subsets of one dataset
        shows those subsets.
        """
        auto = view is None
        view, options = self._view(view, options)
        frame = table(list(self), view=view, metric=metric, **options)
        return frame.dropna(axis="columns", how="all") if auto and len(frame) else frame

    def show(self, view: str | None = None, fmt: str = "text", **options: Any) -> str:
        """The view rendered (``text``, ``md``, ``csv``, ``latex``, ``json``) with its ``n/N*`` counts and notes."""
        view, options = self._view(view, options)
        return render(build_table(list(self), view=view, **options), fmt)

    def _view(self, view: str | None, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The view asked for, else the one that shows what was run (see ``table``)."""
        if view is not None:
            return view, options
        from lmeb.tasks.registry import get_tasks

        everything = {t.name for t in get_tasks()}
        runs: dict[tuple[str, str], set[str]] = {}
        for r in self:
            runs.setdefault((r.model, r.setting), set()).add(r.task_name)
        if runs and all(names >= everything for names in runs.values()):
            return "paper", options
        datasets = {r.task_name for r in self}
        if len(datasets) == 1 and any(len(r.subsets) < len(get_task(r.task_name).subset_names) for r in self):
            return "subsets", {**options, "dataset": datasets.pop()}
        return "datasets", options

    @property
    def scores(self) -> Any:
        """Long DataFrame: model, setting, memory_type, dataset, subset, metric, value (one row per number)."""
        import pandas as pd

        rows = [(r.model, r.setting, r.memory_type, r.task_name, s.subset, metric, value)
                for r in self for s in r.subsets.values() for metric, value in s.scores.items()]
        return pd.DataFrame(rows, columns=["model", "setting", "memory_type", "dataset", "subset", "metric", "value"])

    def per_query(self, metric: str | None = None) -> Any:
        """Long DataFrame of per-query values: model, setting, dataset, subset, query_id, metric, value."""
        import pandas as pd

        rows = [(r.model, r.setting, r.task_name, s.subset, qid, name, value)
                for r in self for s in r.subsets.values() for name, values in s.per_query.items()
                if metric is None or name == metric for qid, value in zip(s.query_ids, values, strict=True)]
        return pd.DataFrame(rows, columns=["model", "setting", "dataset", "subset", "query_id", "metric", "value"])

    def model_counts(self) -> Any:
        """Long DataFrame of the models' counters per subset (provenance ``model_counts``): model, setting,
        dataset, subset, role ("model"/"reranker"), counter (API requests/tokens/retries, pairs...), value.

        Empty for models that keep no ``stats``. ``.groupby(["model", "role", "counter"])["value"].sum()``
        gives what each run cost; ``table("efficiency")`` gives texts, tokens, seconds and memory.
        """
        import pandas as pd

        rows = [(r.model, r.setting, r.task_name, s.subset, role, counter, int(value))
                for r in self for s in r.subsets.values()
                for role, stats in (s.provenance.get("model_counts") or {}).items()
                for counter, value in stats.items()]
        return pd.DataFrame(rows, columns=["model", "setting", "dataset", "subset", "role", "counter", "value"])

    def inspect(self, task: str, model: str | None = None, *, worst: int | None = None,
                queries: list[str] | None = None, versus: str | None = None, k: int = 10,
                setting: str | None = None, data: Path | str | None = None) -> Any:
        """``lmeb inspect`` as a DataFrame: one row per (query, model, document shown) of ``task``
        (``Dataset/subset``); ``model`` defaults to the only one (``lmeb.inspect.queries``)."""
        from lmeb.inspect.queries import inspect_subset

        if model is None:
            names = sorted({r.model for r in self})
            if len(names) != 1:
                raise LmebError(f"name the model to inspect (model=...): these results hold {', '.join(names)}")
            model = names[0]
        return inspect_subset(list(self), model, task, setting=setting, worst=worst, queries=queries,
                              versus=versus, k=k, data=data).to_frame()

    def save(self, output: Path | str) -> list[Path]:
        """Write every dataset result under ``output`` exactly as ``lmeb run`` does; returns the main files."""
        paths = []
        for result in self:
            task = get_task(result.task_name)
            main = result_path(Path(output), result.model, result.setting, result.task_name)
            with results_lock(main):
                _save_rankings(result, main)
                paths.append(write_dataset_result(Path(output), result, task.mteb_name, task.mteb_revision))
        return paths

    def __repr__(self) -> str:
        runs = sorted({(r.model, r.setting) for r in self})
        subsets = sum(len(r.subsets) for r in self)
        return f"Results({len(self)} dataset(s), {subsets} subset(s) of {', '.join(f'{m} ({s})' for m, s in runs)})"


def _save_rankings(result: DatasetResult, main: Path) -> None:
    """Write the rankings held in memory (``lmeb.evaluate`` without ``output``) beside ``main``."""
    from lmeb.results.rankings import DEPTH, rankings_file, write_rankings

    for sub in result.subsets.values():
        if sub.rankings is not None:
            path, rel = rankings_file(main, sub.subset)
            run = {qid: dict(pairs) for qid, pairs in sub.rankings.items()}
            sub.provenance["rankings"] = {"file": rel, "sha256": write_rankings(run, path), "depth": DEPTH}
