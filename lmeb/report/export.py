"""Results in the mteb results-repository layout: ``<org>__<model>/<revision>/<MtebTaskName>.json``.

Each file is mteb's ``TaskResult`` JSON (``dataset_revision``, ``task_name``, ``mteb_version``,
``scores.test`` = one object per subset with ``hf_subset``, ``languages``, ``main_score`` and every
metric, ``evaluation_time``, ``kg_co2_emissions``, ``date``, ``evaluation_phases``), with mteb's task
and subset names from the registry (``LMEBMLDR``, ``ProceduralMemBench``, EPBench subsets
``scenario__query_type``) and mteb's dataset revisions; scores rounded to 6 decimals as mteb's
``TaskResult.to_disk`` does; ``main_score`` is the task's main metric. The official dataset revision
is stamped only on results of data asserted official (``official_data``), or downloaded by ``lmeb download
--source mteb`` at that revision, and not contradicted by the recorded counts (``lmeb.report.official``); others
get ``lmeb-unverified-data-<fingerprint>`` or ``lmeb-differs-data-<fingerprint>``, and every file carries an
``lmeb_data`` object (status, data fingerprints, differences, origin, the official revision; mteb's loaders
ignore it). Beside them,
``model_meta.json`` (mteb's ``ModelMeta.to_dict`` fields;
the ones lmeb cannot know are null), which mteb's result loaders read for the model's name and
revision. lmeb's own provenance block is not exported (mteb's schema has no place for it). BM25 is
described as mteb describes its bm25s baseline (sparse, no framework, no parameters).

``mteb_version`` is the mteb release whose retrieval scores lmeb reproduces (``MTEB_VERSION``);
mteb has no instruction setting, so one setting per model is exported (``--setting`` when a model
has both). mteb reads a task result as the dataset's score, so a dataset missing registry subsets
is refused (``allow_incomplete`` exports it anyway; ``incomplete_datasets`` names them). Every file is
written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmeb.errors import LmebError
from lmeb.files import atomic_write_json, writable_folder
from lmeb.report.aggregate import dataset_status, listed
from lmeb.report.official import OFFICIAL, DataCheck, check_data, require_official
from lmeb.results.dataset_result import DatasetResult
from lmeb.results.identity import SYNTHETIC
from lmeb.safety import safe_name
from lmeb.tasks.registry import get_task
from lmeb.tasks.settings import check_setting

MTEB_VERSION = "2.26.24"
NO_REVISION = "no_revision_available"  # mteb's folder name for a model without a revision
SPLIT = "test"
LANGUAGES = ["eng-Latn"]


def model_path_name(model: str, org: str | None = None) -> str:
    """mteb's ``ModelMeta.model_name_as_path``: '/' -> '__', ' ' -> '_'; ``org`` prefixes a name without one."""
    name = model.strip().strip("/")
    if org and "/" not in name:
        name = f"{org.strip('/')}/{name}"
    return name.replace("/", "__").replace(" ", "_")


def _model_config(result: DatasetResult) -> dict[str, Any]:
    config = result.provenance.get("model_config")
    return config if isinstance(config, dict) else {}


def model_revision(result: DatasetResult, revision: str | None = None) -> str:
    """``revision`` if given, else the model revision recorded in the provenance, else mteb's placeholder."""
    return str(revision or _model_config(result).get("revision") or NO_REVISION)


def dataset_revision(result: DatasetResult, data: DataCheck) -> str:
    """mteb's dataset revision for official data, else ``lmeb-<status>-data-<fingerprint[:12]>``."""
    if data.status == OFFICIAL:
        return get_task(result.task_name).mteb_revision
    return f"lmeb-{data.status}-data-{(data.fingerprint or 'unknown')[:12]}"


def task_result_json(result: DatasetResult, official_data: bool = False,
                     data: DataCheck | None = None) -> dict[str, Any]:
    """The mteb ``TaskResult`` object of one dataset result (subset names in mteb's spelling); ``data``:
    its ``check_data`` when the caller has it already."""
    task = get_task(result.task_name)
    data = data or check_data(result, official_data)
    scores = []
    for name, sub in result.subsets.items():
        entry: dict[str, Any] = {k: round(float(v), 6) for k, v in sub.scores.items()}
        entry.update(hf_subset=task.subset(name).mteb_name, languages=list(LANGUAGES),
                     main_score=round(float(sub.scores.get(task.main_score, sub.main_score)), 6),
                     mteb_version=MTEB_VERSION)
        scores.append(entry)
    order = {s.mteb_name: i for i, s in enumerate(task.subsets)}
    scores.sort(key=lambda e: order[e["hf_subset"]])
    return {
        "dataset_revision": dataset_revision(result, data),
        "task_name": task.mteb_name,
        "mteb_version": MTEB_VERSION,
        "scores": {SPLIT: scores},
        "evaluation_time": round(sum(s.evaluation_time for s in result.subsets.values()), 6),
        "kg_co2_emissions": None,
        "date": None,
        "evaluation_phases": None,
        "lmeb_data": {**data.as_dict(), "official_dataset_revision": task.mteb_revision},
    }


def model_meta_json(result: DatasetResult, name: str, revision: str) -> dict[str, Any]:
    """mteb's ``model_meta.json`` for the model of ``result``: what the provenance tells, null elsewhere."""
    config = _model_config(result)
    similarity = result.provenance.get("similarity") or config.get("similarity")
    kind = result.provenance.get("model_kind")
    framework = "Sentence Transformers" if config.get("class") == "SentenceTransformerEncoder" else "PyTorch"
    sparse = (kind == "searcher" or config.get("class") == "BM25Searcher") and not result.provenance.get(
        "reranker_config")  # BM25 alone: described as mteb's baseline-bm25s
    uses_instructions = result.setting == "w_inst" and result.provenance.get("uses_instructions") is not False
    meta = {
        "name": name, "revision": revision, "release_date": None, "languages": None, "n_parameters": None,
        "n_active_parameters_override": None, "n_embedding_parameters": None, "memory_usage_mb": None,
        "max_tokens": config.get("max_length"), "embed_dim": config.get("dim") or config.get("embed_dim"),
        "license": None, "open_weights": None, "public_training_code": None, "public_training_data": None,
        "framework": [framework], "reference": None,
        "similarity_fn_name": similarity if similarity in ("cosine", "dot") else None,
        "use_instructions": uses_instructions and not sparse, "training_datasets": None, "adapted_from": None,
        "superseded_by": None, "modalities": ["text"],
        "model_type": ["cross-encoder"] if kind == "reranker" else ["dense"], "citation": None,
        "contacts": None, "experiment_kwargs": None, "output_dtypes": None, "extra_requirements_groups": None,
        "loader": None, "loader_kwargs": {}, "is_cross_encoder": kind == "reranker",
    }
    if sparse:
        meta.update(model_type=["sparse"], framework=[], n_parameters=0, n_embedding_parameters=0,
                    embed_dim=None, similarity_fn_name=None, open_weights=True)
    return meta


def incomplete_datasets(results: Sequence[DatasetResult]) -> list[str]:
    """One line per result missing registry subsets: ``model (setting): Dataset 3/54 subsets (missing ...)``."""
    out = []
    for st in (dataset_status(r) for r in results):
        if not st.complete:
            out.append(f"{st.model} ({st.setting}): {st.dataset} {st.parts} subsets (missing {listed(st.missing, 4)})")
    return out


def export_mteb(results: Sequence[DatasetResult], out: Path | str, revision: str | None = None,
                org: str | None = None, setting: str | None = None, allow_incomplete: bool = False,
                official_data: bool = False, allow_synthetic: bool = False) -> list[Path]:
    """Write every result under ``out`` in mteb's layout; returns the files written (task files and metas).

    A dataset missing registry subsets is an error naming it, unless ``allow_incomplete``. ``official_data``
    asserts the results come from the official release (an error when the recorded counts contradict it).
    Results on lmeb's synthetic sample are an error unless ``allow_synthetic`` (then marked ``synthetic``).
    """
    if setting is not None:
        check_setting(setting)
    chosen = [r for r in results if setting is None or r.setting == setting]
    if not chosen:
        raise LmebError("no results to export" + (f" in setting {setting}" if setting else ""))
    by_model: dict[str, set[str]] = {}
    for r in chosen:
        by_model.setdefault(r.model, set()).add(r.setting)
    both = sorted(m for m, s in by_model.items() if len(s) > 1)
    if both:
        raise LmebError(f"{', '.join(both)}: results in both settings; mteb has no setting, choose one with --setting")
    incomplete = incomplete_datasets(chosen)
    if incomplete and not allow_incomplete:
        raise LmebError(f"incomplete dataset(s), which mteb would read as the dataset's score: {'; '.join(incomplete)}"
                        " (run the missing subsets, or --allow-incomplete to export them anyway)")
    checks = [check_data(r, official_data) for r in chosen]  # once per result: the gate and the files share it
    synthetic = [f"{r.model} ({r.setting}) {r.task_name}" for r, c in zip(chosen, checks, strict=True)
                 if c.status == SYNTHETIC]
    if synthetic and not allow_synthetic:
        raise LmebError(f"synthetic data (lmeb's sample, not LMEB): {listed(synthetic, 4)}; its scores say nothing "
                        "about a model (--allow-synthetic exports them anyway, marked synthetic)")
    if official_data:
        require_official(checks)
    out = Path(out)
    writable_folder(out, "the export", "choose another OUT")
    written: list[Path] = []
    seen: dict[Path, Path | None] = {}
    metas: dict[Path, dict[str, Any]] = {}
    for r, data in zip(chosen, checks, strict=True):
        # names read from a results file or an option: each one folder, so the files stay under ``out``
        folder = out / safe_name(model_path_name(r.model, org), f"{r.path}: model name") / safe_name(
            model_revision(r, revision), f"{r.path}: model revision")
        obj = task_result_json(r, data=data)
        path = folder / f"{obj['task_name']}.json"
        if path in seen:
            raise LmebError(f"{r.path}: {obj['task_name']} of {r.model} is also in {seen[path]}")
        seen[path] = r.path
        atomic_write_json(path, obj)
        written.append(path)
        name = r.model if (not org or "/" in r.model) else f"{org}/{r.model}"
        metas.setdefault(folder, model_meta_json(r, name, folder.name))
    for folder, meta in metas.items():
        atomic_write_json(folder / "model_meta.json", meta)
        written.append(folder / "model_meta.json")
    return written
