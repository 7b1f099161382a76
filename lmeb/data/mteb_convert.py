"""``lmeb convert``: write LMEB data in mteb's HF-datasets format from the official layout, or back.

* ``to_mteb``: ``OUT/<Name>/`` per dataset (``Name`` = mteb's repository name: ``ReMe``, ``Proced_mem_bench``),
  parquet files under ``data/`` and a README card whose YAML header declares, per mteb subset, the configs
  ``<subset>-corpus|queries|qrels|top_ranked`` (split ``test``), so ``datasets.load_dataset("OUT/ReMe",
  "<subset>-corpus", split="test")`` and mteb's ``RetrievalDatasetLoader(hf_repo="OUT/ReMe", revision=None,
  config="<subset>")`` read it. A corpus shared by several subsets is written once and declared by each.
  ``top_ranked`` gives each query its scene's candidates; a query whose scene has no candidates line gets
  no row (lmeb then ranks it among the whole corpus, as the official harness does).
* ``to_official``: ``OUT/<Type>/<Dataset>/`` in the official layout from a copy in mteb's format; per-query
  ``top_ranked`` lists become the scene's candidates line (the queries of one scene must agree).

Both keep every id, text (title and text apart), qrels score and candidate list, so a model scores the
same on either (tests/test_mteb_format.py checks it on the real data). Files are written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from lmeb.data.lines import JsonlReader, as_id, read_candidates, read_corpus, read_qrels, read_queries, text_part
from lmeb.data.mteb_format import CARD, KINDS, SPLIT, MtebReader
from lmeb.data.reader import mteb_copy, subset_paths
from lmeb.errors import LmebError
from lmeb.files import atomic_path, atomic_write_text
from lmeb.tasks.registry import Task


def _write_parquet(path: Path, columns: dict[str, list[Any]], types: dict[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({name: pa.array(values, type=types[name]) for name, values in columns.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _raw_corpus(path: Path) -> dict[str, list[Any]]:
    """id, title, text columns of a corpus file, checked as ``read_corpus`` checks it (title/text kept apart)."""
    read_corpus(path)  # every check of the official reader, once (a repeated id or a bad line is an error)
    cols: dict[str, list[Any]] = {"id": [], "title": [], "text": []}
    for _, obj in JsonlReader(path, ("id",)):
        cols["id"].append(as_id(obj["id"]))
        cols["title"].append(text_part(obj.get("title")))
        cols["text"].append(text_part(obj.get("text")))
    return cols


def to_mteb(task: Task, root: Path, out: Path, subsets: Sequence[str] | None = None) -> Path:
    """Write ``task`` (official layout under ``root``) in mteb's format under ``out``; returns the folder."""
    import pyarrow as pa

    folder = Path(out) / task.mteb_hf_dataset.rsplit("/", 1)[-1]
    base = Path(root) / task.path
    text, strings = pa.string(), pa.list_(pa.string())
    configs: list[dict[str, Any]] = []
    written: dict[Path, str] = {}
    for name in subsets or task.subset_names:
        sub = task.subset(name)
        paths = subset_paths(task, Path(root), sub.name)
        corpus_path = paths["corpus"]
        assert corpus_path is not None
        rel = corpus_path.relative_to(base).with_suffix("").as_posix().replace("/", "__")
        corpus_file = f"data/{rel}.parquet"
        if corpus_path not in written:
            _write_parquet(folder / corpus_file, _raw_corpus(corpus_path), {"id": text, "title": text, "text": text})
            written[corpus_path] = corpus_file
        query_ids, query_texts, _ = read_queries(paths["queries"])  # type: ignore[arg-type]
        _write_parquet(folder / f"data/{sub.mteb_name}-queries.parquet", {"id": query_ids, "text": query_texts},
                       {"id": text, "text": text})
        qrels, _ = read_qrels(paths["qrels"])  # type: ignore[arg-type]
        rows = [(q, d, s) for q, docs in qrels.items() for d, s in docs.items()]
        _write_parquet(folder / f"data/{sub.mteb_name}-qrels.parquet",
                       {"query-id": [r[0] for r in rows], "corpus-id": [r[1] for r in rows],
                        "score": [r[2] for r in rows]}, {"query-id": text, "corpus-id": text, "score": pa.int64()})
        files = {"corpus": corpus_file, "queries": f"data/{sub.mteb_name}-queries.parquet",
                 "qrels": f"data/{sub.mteb_name}-qrels.parquet"}
        cand = paths["candidates"]
        if cand is not None:
            scenes = read_candidates(cand)[0] if cand.is_file() else {}
            ranked = [(q, scenes[task.scene_of(q)]) for q in query_ids if task.scene_of(q) in scenes]
            files["top_ranked"] = f"data/{sub.mteb_name}-top_ranked.parquet"
            _write_parquet(folder / files["top_ranked"], {"query-id": [r[0] for r in ranked],
                                                          "corpus-ids": [r[1] for r in ranked]},
                           {"query-id": text, "corpus-ids": strings})
        configs += [{"config_name": f"{sub.mteb_name}-{kind}", "data_files": [{"split": SPLIT, "path": path}]}
                    for kind, path in files.items()]
    header = yaml.safe_dump({"configs": configs, "license": task.license, "language": ["en"],
                             "task_categories": ["text-retrieval"]}, sort_keys=False, width=1000)
    atomic_write_text(folder / CARD, f"---\n{header}---\n\n# {task.mteb_name} (LMEB, mteb format)\n\n"
                      f"{task.description}\n\nWritten by `lmeb convert --to mteb` from the official layout "
                      f"(`{task.path}`). Each subset has the configs " + ", ".join(f"`<subset>-{k}`" for k in KINDS)
                      + f" (split `{SPLIT}`), as mteb's RetrievalDatasetLoader reads them.\n\nReference: "
                      f"{task.reference}\n")
    return folder


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def to_official(task: Task, root: Path, out: Path, subsets: Sequence[str] | None = None) -> Path:
    """Write ``task``'s mteb-format copy under ``root`` in the official layout under ``out``; returns the
    dataset folder."""
    folder = mteb_copy(root, task)
    if folder is None:
        raise LmebError(f"{root}: no mteb-format copy of {task.name} ({task.mteb_hf_dataset.rsplit('/', 1)[-1]}/"
                        f"{CARD} missing)")
    reader = MtebReader(task, folder)
    corpora: dict[Path, list[str]] = {}
    candidates: dict[Path, dict[str, list[str]]] = {}
    for name in subsets or task.subset_names:
        sub = task.subset(name)
        paths = subset_paths(task, Path(out), sub.name)
        corpus, cols = reader.corpus_rows(sub.name)
        target = paths["corpus"]
        assert target is not None
        if target in corpora:
            if corpora[target] != corpus.ids:
                raise LmebError(f"{folder / CARD}: {sub.mteb_name}-corpus differs from another subset's corpus, "
                                f"but the official layout shares {target.relative_to(out)}")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            _jsonl(target, [{"id": i, "title": t or "", "text": x or ""} for i, t, x in
                            zip(cols["id"], cols["title"], cols["text"], strict=True)])
            corpora[target] = corpus.ids
        data = reader.load(sub.name)
        queries = paths["queries"]
        assert queries is not None and paths["qrels"] is not None
        queries.parent.mkdir(parents=True, exist_ok=True)
        _jsonl(queries, [{"id": i, "text": t} for i, t in zip(data.query_ids, data.query_texts, strict=True)])
        atomic_write_text(paths["qrels"], "".join(f"{q}\t{d}\t{s}\n" for q, docs in data.qrels.items()
                                                  for d, s in docs.items()))
        if paths["candidates"] is not None and data.scenes:
            lines = candidates.setdefault(paths["candidates"], {})
            for qid, docs in data.scenes.items():
                scene = task.scene_of(qid)
                if lines.setdefault(scene, docs) != docs:
                    raise LmebError(f"{folder / CARD}: {sub.mteb_name}-top_ranked gives the queries of scene "
                                    f"{scene!r} different candidates; the official layout has one line per scene")
    for path, lines in candidates.items():
        _jsonl(path, [{"scene_id": s, "candidate_doc_ids": d} for s, d in lines.items()])
    return Path(out) / task.path


def convert(to: str, root: Path, out: Path, tasks: Sequence[tuple[Task, Sequence[str]]]) -> list[Path]:
    """Convert every (task, subsets) under ``root`` to ``to`` (``mteb`` or ``official``) under ``out``."""
    if to not in ("mteb", "official"):
        raise LmebError(f"--to {to!r}: expected mteb or official")
    if Path(out).resolve() == Path(root).resolve():
        raise LmebError(f"{out}: the output folder is the data folder; choose another")
    done = []
    for task, subsets in tasks:
        if to == "mteb":
            done.append(to_mteb(task, root, out, subsets))
        else:
            done.append(to_official(task, root, out, subsets))
    return done
