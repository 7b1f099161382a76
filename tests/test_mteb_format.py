"""mteb's HF-datasets format: ``lmeb convert`` both ways, lmeb reading a copy with the same rules, mteb's
own ``RetrievalDatasetLoader`` reading lmeb's conversion, ``lmeb download --source mteb`` from a local
hub, and ``export-mteb`` stamping mteb's revision exactly when the data is that revision."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hub_server import HubServer, Repo

import lmeb
from lmeb.cli import main as lmeb_main
from lmeb.data.mteb_format import MtebReader, open_reader
from lmeb.data.reader import TaskReader
from lmeb.engine.retrieval import candidate_rows
from lmeb.errors import LmebError
from lmeb.reporter import Reporter
from lmeb.tasks.registry import get_task
from tests.conftest import MINILM_SHORT

# a subset per layout: corpus at the root + root candidates, per scenario, per subset + subset candidates, flat
SAMPLE_TASKS = "LoCoMo/multi_hop,ReMe/bfcl_qwen3_8b/task_query,MemBench/aggregative,QASPER"


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """datasets' arrow cache in the test's folder, never the user's."""
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")


def cells(results: lmeb.Results) -> dict[tuple[str, str], dict[str, float]]:
    return {(r.task_name, s): dict(sub.scores) for r in results for s, sub in r.subsets.items()}


def bm25_cells(data: Path, tasks: str) -> dict[tuple[str, str], dict[str, float]]:
    return cells(lmeb.evaluate("bm25", tasks=tasks, data=data, cache_dir=None, reporter=Reporter(lambda _: None)))


def test_sample_round_trip_keeps_every_value_and_score(sample_data: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from lmeb.tasks.registry import select

    assert lmeb_main(["convert", "--to", "mteb", str(sample_data), str(tmp_path / "m"), "--tasks", SAMPLE_TASKS]) == 0
    written = capsys.readouterr().out.split()
    assert written == [str(tmp_path / "m" / n) for n in ("LoCoMo", "MemBench", "QASPER", "ReMe")]
    assert lmeb_main(["convert", "--to", "official", str(tmp_path / "m"), str(tmp_path / "o"), "--tasks",
                      SAMPLE_TASKS]) == 0
    for selected in select(SAMPLE_TASKS):
        task = selected.task
        official = TaskReader(task, sample_data)
        copy = open_reader(task, tmp_path / "m")
        back = TaskReader(task, tmp_path / "o")
        assert isinstance(copy, MtebReader)
        for sub in selected.subsets:
            a, b, c = official.load(sub), copy.load(sub), back.load(sub)
            for other in (b, c):
                assert (other.corpus.ids, other.corpus.texts) == (a.corpus.ids, a.corpus.texts)
                assert (other.query_ids, other.query_texts, other.qrels) == (a.query_ids, a.query_texts, a.qrels)
                rows_a, rows_o = candidate_rows(a), candidate_rows(other)
                assert all((x is None and y is None) or np.array_equal(x, y) for x, y in zip(rows_a, rows_o,
                                                                                             strict=True))
    cells = bm25_cells(sample_data, SAMPLE_TASKS)
    assert cells and bm25_cells(tmp_path / "m", SAMPLE_TASKS) == cells == bm25_cells(tmp_path / "o", SAMPLE_TASKS)


@pytest.mark.slow  # importing mteb takes seconds
def test_mteb_loader_reads_the_conversion(sample_data: Path, tmp_path: Path) -> None:
    """mteb 2.26's own loader and ``datasets.load_dataset`` read ``OUT/<Name>`` as they read mteb/<Name>."""
    import datasets
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalDatasetLoader

    from lmeb.data.mteb_convert import to_mteb

    task = get_task("ReMe")
    folder = to_mteb(task, sample_data, tmp_path / "m")
    assert folder == tmp_path / "m" / "ReMe"
    sub = task.subset("bfcl_qwen3_8b__task_query")
    official = TaskReader(task, sample_data).load(sub.name)
    corpus = datasets.load_dataset(str(folder), f"{sub.mteb_name}-corpus", split="test")
    assert corpus["id"] == official.corpus.ids
    split = RetrievalDatasetLoader(hf_repo=str(folder), revision=None, config=sub.mteb_name).load()
    assert len(split["corpus"]) == len(official.corpus)
    assert split["relevant_docs"] == official.qrels and split["top_ranked"] is None
    assert sorted(split["queries"]["id"]) == sorted(q for q in official.query_ids if q in official.qrels)
    locomo = to_mteb(get_task("LoCoMo"), sample_data, tmp_path / "m")
    data = TaskReader(get_task("LoCoMo"), sample_data).load("multi_hop")
    ranked = RetrievalDatasetLoader(hf_repo=str(locomo), revision=None, config="multi_hop").load()["top_ranked"]
    assert ranked == {q: data.candidates(q) for q in data.query_ids if data.candidates(q) is not None}


def test_run_reads_a_copy_in_either_spelling(sample_data: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from lmeb.data.mteb_convert import to_mteb

    to_mteb(get_task("Proced_mem_bench"), sample_data, tmp_path / "m")
    code = lmeb_main(["run", "--model", "bm25", "--tasks", "ProceduralMemBench/EASY", "--data", str(tmp_path / "m"),
                      "--output", str(tmp_path / "r"), "--no-cache"])
    assert code == 0, capsys.readouterr().err
    saved = json.loads((tmp_path / "r/bm25/wo_inst/Proced_mem_bench.json").read_text())
    ours = bm25_cells(sample_data, "Proced_mem_bench/easy")[("Proced_mem_bench", "easy")]
    assert saved["scores"]["test"][0]["ndcg_at_10"] == pytest.approx(ours["ndcg_at_10"], abs=1e-6)
    capsys.readouterr()
    # inspecting that run reads the texts the way the run did: from the mteb copy (no official folder there)
    assert lmeb_main(["inspect", str(tmp_path / "r"), "--model", "bm25", "--tasks", "Proced_mem_bench/easy",
                      "--data", str(tmp_path / "m"), "--worst", "1"]) == 0, capsys.readouterr().err
    assert "Proced_mem_bench/easy" in capsys.readouterr().out


def test_a_broken_card_is_one_line(sample_data: Path, tmp_path: Path) -> None:
    from lmeb.data.mteb_convert import to_mteb

    folder = to_mteb(get_task("Proced_mem_bench"), sample_data, tmp_path / "m")
    card = folder / "README.md"
    card.write_text(card.read_text().replace("config_name: easy-qrels", "config_name: easy-qrelz"))
    with pytest.raises(LmebError, match=r"README.md: no config 'easy-qrels' for Proced_mem_bench/easy$"):
        open_reader(get_task("Proced_mem_bench"), tmp_path / "m").load("easy")
    card.write_text("no header\n")
    with pytest.raises(LmebError, match=r"README\.md: no YAML header declaring the dataset's configs"):
        open_reader(get_task("Proced_mem_bench"), tmp_path / "m")


def test_download_mteb_copy_and_export_stamps_its_revision(sample_data: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """``lmeb download --source mteb`` fetches mteb/LoCoMo at the revision mteb pins; results computed from it
    export with that revision, with no assertion; the same data at another revision does not."""
    import huggingface_hub.constants as constants

    import lmeb.report.official
    from lmeb.data.mteb_convert import to_mteb

    monkeypatch.setattr(lmeb.report.official, "published_counts", lambda name: {})  # sample counts aren't LoCoMo's
    # the sample's ids say "synthetic", which export refuses; this test is about the origin rule
    import lmeb.engine.runner
    monkeypatch.setattr(lmeb.engine.runner, "is_synthetic", lambda root, subset=None: False)
    task = get_task("LoCoMo")
    folder = to_mteb(task, sample_data, tmp_path / "m")
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    repo = Repo(lfs=(".parquet",))
    repo.commit(files, sha=task.mteb_revision)
    other = repo.commit(files, branch="dev", sha="f" * 40)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    with HubServer({"mteb/LoCoMo": repo}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        for dest, extra in ((tmp_path / "pinned", []), (tmp_path / "dev", ["--revision", "dev"])):
            code = lmeb_main(["download", "--tasks", "LoCoMo", "--source", "mteb", "--to", str(dest), *extra])
            assert code == 0, capsys.readouterr().err
        monkeypatch.delenv("LMEB_DATA", raising=False)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        code = lmeb_main(["run", "--model", "bm25", "--tasks", "LoCoMo", "--source", "mteb", "--output",
                          str(tmp_path / "r-fetched"), "--no-cache"])  # fetch on run, from mteb's copy
        assert code == 0 and (tmp_path / "home/.cache/lmeb/data/eval_data/LoCoMo/README.md").is_file()
        captured = capsys.readouterr()
        assert "lmeb: fetching LoCoMo (" in captured.err
        assert "rule has candidates" not in captured.err  # top_ranked are its candidates: the published task
    out = captured.out
    assert f"from mteb/LoCoMo@{task.mteb_revision[:12]} (mteb)" in out and f"mteb/LoCoMo@{other[:12]} (mteb)" in out
    assert (tmp_path / "pinned/eval_data/LoCoMo/README.md").is_file()
    revisions = {}
    for name in ("pinned", "dev"):
        args = ["--tasks", "LoCoMo", "--data", str(tmp_path / name / "eval_data"), "--output",
                str(tmp_path / f"r-{name}")]
        assert lmeb_main(["run", "--model", "bm25", *args, "--no-cache"]) == 0
        assert lmeb_main(["export-mteb", str(tmp_path / f"r-{name}"), str(tmp_path / f"x-{name}")]) == 0
        exported = json.loads(next((tmp_path / f"x-{name}").rglob("LoCoMo.json")).read_text())
        revisions[name] = (exported["dataset_revision"], exported["lmeb_data"]["status"],
                           (exported["lmeb_data"]["data_origin"] or {}).get("commit"))
    assert revisions["pinned"] == (task.mteb_revision, "official", task.mteb_revision)
    assert revisions["dev"][0].startswith("lmeb-unverified-data-") and revisions["dev"][2] == other
    assert lmeb_main(["export-mteb", str(tmp_path / "r-dev"), str(tmp_path / "y"), "--official-data"]) == 2
    assert f"downloaded from mteb/LoCoMo@{other}, not the official revision" in capsys.readouterr().err


@pytest.mark.slow
def test_real_data_scores_identically_from_its_mteb_conversion(real_data: Path, tmp_path: Path,
                                                              bm25_real_results: Path) -> None:
    """Done-when: every dataset in ../shared gives the same BM25 cells from the official layout (conftest's run of
    ``lmeb run --model bm25 --all``) and from its mteb-format conversion read by lmeb, and mteb's loader reads
    the conversion with the same counts."""
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalDatasetLoader

    from lmeb.data.mteb_convert import convert
    from lmeb.data.reader import present_tasks
    from lmeb.tasks.registry import all_tasks

    tasks = present_tasks(real_data, all_tasks())
    assert {"KnowMeBench", "LoCoMo", "Proced_mem_bench", "Gorilla"} <= {t.name for t in tasks}
    convert("mteb", real_data, tmp_path / "m", [(t, t.subset_names) for t in tasks])
    names = ",".join(t.name for t in tasks)
    official = cells(lmeb.load_results(bm25_real_results))
    assert len(official) == sum(len(t.subsets) for t in tasks)
    assert bm25_cells(tmp_path / "m", names) == official
    for task in tasks:  # mteb's loader (0.3 s a subset) on each dataset's first and last subset
        reader = TaskReader(task, real_data)
        for sub in task.subsets if len(task.subsets) <= 2 else (task.subsets[0], task.subsets[-1]):
            data = reader.load(sub.name)
            split = RetrievalDatasetLoader(hf_repo=str(tmp_path / "m" / task.mteb_hf_dataset.split("/")[1]),
                                           revision=None, config=sub.mteb_name).load()
            assert len(split["corpus"]) == len(data.corpus)
            assert len(split["queries"]) == sum(1 for q in data.query_ids if q in data.qrels)
            assert split["relevant_docs"] == data.qrels
            if data.scenes is not None:
                assert len(split["top_ranked"] or {}) == sum(1 for q in data.query_ids if data.candidates(q))


@pytest.mark.slow
def test_minilm_scores_identically_from_the_mteb_conversion(real_data: Path, tmp_path: Path, minilm_path: Path,
                                                           minilm_proced_cache: Path) -> None:
    import shutil

    from lmeb.data.mteb_convert import to_mteb

    to_mteb(get_task("Proced_mem_bench"), real_data, tmp_path / "m")
    # one embedding cache, holding the vectors of every text of the real data (conftest encoded them: more
    # than 0 texts): a run on the conversion encodes only texts the conversion changed
    shutil.copytree(minilm_proced_cache, tmp_path / "cache")
    cells, encoded = {}, []
    for data in (real_data, tmp_path / "m"):
        results = lmeb.evaluate(str(minilm_path), tasks="Proced_mem_bench", data=data, cache_dir=tmp_path / "cache",
                                model_options=MINILM_SHORT, reporter=Reporter(lambda _: None))
        cells[str(data)] = {s: dict(sub.scores) for r in results for s, sub in r.subsets.items()}
        encoded.append(sum(summary.texts.encoded for summary in results.summaries))
    assert len(cells[str(real_data)]) == 3 and cells[str(real_data)] == cells[str(tmp_path / "m")]
    assert encoded == [0, 0]  # every query and document text came out of the copy unchanged


def test_run_reads_mteb_copies_from_a_hub_cache(sample_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """``--data`` a Hugging Face hub cache where mteb left ``mteb/<Name>`` at its pinned revision: read from there."""
    import huggingface_hub.constants as constants
    from huggingface_hub import snapshot_download

    from lmeb.data.mteb_convert import to_mteb

    task = get_task("Proced_mem_bench")
    folder = to_mteb(task, sample_data, tmp_path / "m")
    repo = Repo(lfs=(".parquet",))
    repo.commit({p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()},
                sha=task.mteb_revision)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with HubServer({"mteb/Proced_mem_bench": repo}) as hub:  # what mteb's own download leaves in the cache
        snapshot_download("mteb/Proced_mem_bench", repo_type="dataset", revision=task.mteb_revision,
                          cache_dir=tmp_path / "hub", endpoint=hub.url)
    snapshot = tmp_path / "hub/datasets--mteb--Proced_mem_bench/snapshots" / task.mteb_revision
    assert (snapshot / "README.md").is_symlink()  # the hub cache's layout: links to content-addressed blobs
    code = lmeb_main(["run", "--model", "bm25", "--tasks", "ProceduralMemBench", "--data", str(tmp_path / "hub"),
                      "--output", str(tmp_path / "r"), "--no-cache"])
    assert code == 0, capsys.readouterr().err
    saved = lmeb.load_results(tmp_path / "r")[0]
    ours = bm25_cells(sample_data, "Proced_mem_bench")
    assert {s: r.scores for s, r in saved.subsets.items()} == {s: v for (_, s), v in ours.items()}


@pytest.mark.slow  # imports mteb
def test_registry_names_and_revisions_are_mteb_s() -> None:
    """``lmeb download --source mteb`` fetches what the registry names: mteb 2.26's repository, pinned revision
    and subset names for every LMEB task."""
    import mteb.tasks.retrieval.eng.lmeb_retrieval as lmeb_tasks

    from lmeb.tasks.registry import all_tasks

    classes = {c.metadata.name: c.metadata for c in vars(lmeb_tasks).values()
               if isinstance(c, type) and hasattr(c, "metadata") and hasattr(c.metadata, "dataset")}
    for task in all_tasks():
        meta = classes[task.mteb_name]
        assert (meta.dataset["path"], meta.dataset["revision"]) == (task.mteb_hf_dataset, task.mteb_revision)
        assert set(meta.eval_langs) == {s.mteb_name for s in task.subsets}, task.name
    assert len(classes) == 22
