"""``lmeb download`` and fetch-on-run against a real hub protocol: a local server (``tests/hub_server.py``)
serving a generated LMEB repository at two revisions, the real huggingface_hub client pointed at it with
``HF_ENDPOINT``. Covers: one dataset's files only, resume of an interrupted file, a pinned revision, a
changed file at a new revision, 404 / 500 / hang / offline in one line, a damaged file, and
``lmeb run --model bm25 --tasks LoCoMo`` with no data folder."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hub_server import HubServer, Repo

from lmeb.cli import main as lmeb_main
from lmeb.errors import LmebError
from lmeb.reporter import Reporter
from lmeb.tasks.registry import get_task

LOCOMO = "eval_data/Dialogue/LoCoMo"
CHANGED = f"{LOCOMO}/single_hop/queries.jsonl"


@pytest.fixture(scope="module")
def official_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Repo, str, str]:
    """KaLM-Embedding/LMEB with LoCoMo and Gorilla from the synthetic sample: an old commit, then ``main``
    where one LoCoMo queries file changed."""
    from lmeb.data.sample import write_sample

    sample = write_sample(tmp_path_factory.mktemp("hub-sample"))
    files = {}
    for dataset in ("Dialogue/LoCoMo", "Procedural/Gorilla"):
        for path in sorted((sample / dataset).rglob("*")):
            if path.is_file():
                files[f"eval_data/{path.relative_to(sample).as_posix()}"] = path.read_bytes()
    repo = Repo()
    old = repo.commit({**files, CHANGED: files[CHANGED].replace(b'"text": "', b'"text": "old ', 1)})
    new = repo.commit(files)
    return repo, old, new


@pytest.fixture
def hub(official_repo: tuple[Repo, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The server, running for one test, with the client pointed at it (online, a private hub cache)."""
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("LMEB_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LMEB_HUB_TIMEOUT", "1")
    with HubServer({"KaLM-Embedding/LMEB": official_repo[0]}, hang_seconds=4) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = lmeb_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def manifest(root: Path) -> dict:
    return json.loads((root / ".lmeb_download.json").read_text())["datasets"]


def test_download_fetches_only_the_selected_dataset(hub: HubServer, official_repo: tuple[Repo, str, str],
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo, _, new = official_repo
    code, out, err = run_cli(capsys, "download", "--tasks", "LoCoMo", "--to", str(tmp_path / "d"))
    assert code == 0, err
    fetched = hub.fetched()
    assert fetched and all(p.startswith(LOCOMO + "/") for p in fetched)  # Gorilla never asked for
    assert sorted(set(fetched)) == sorted(p for p in repo.commits[new] if p.startswith(LOCOMO))
    lines = out.splitlines()
    assert lines[0].startswith("LoCoMo: 12 files, ") and f"KaLM-Embedding/LMEB@{new[:12]} (official)" in lines[0]
    assert lines[1] == f"data root: {tmp_path / 'd' / 'eval_data'} (lmeb run --data {tmp_path / 'd' / 'eval_data'} ...)"
    assert "lmeb download: 1 dataset, " in err
    root = tmp_path / "d" / "eval_data"
    entry = manifest(root)["official/LoCoMo"]
    assert (entry["source"], entry["revision"], entry["commit"]) == ("official", "main", new)
    assert (root / "Dialogue/LoCoMo/corpus.jsonl").read_bytes() == repo.commits[new][f"{LOCOMO}/corpus.jsonl"]
    assert not (root / "Procedural").exists()


def test_download_resumes_an_interrupted_file(hub: HubServer, official_repo: tuple[Repo, str, str],
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection cut in the middle of a file: the hub client asks for the rest only (``Range``) and the
    file ends whole and checked; a second run after an interrupted one fetches only what is missing."""
    import huggingface_hub.constants as constants

    from lmeb.data.hub import download
    from lmeb.tasks.registry import get_task

    repo, _, new = official_repo
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 256)  # written to disk 256 bytes at a time
    # the hub client waits 1 s before it resumes a cut file (its only use of time): 0.05 s here
    import huggingface_hub.file_download as file_download
    monkeypatch.setattr(file_download, "time", SimpleNamespace(sleep=lambda _s: time.sleep(0.05)))
    dest = tmp_path / "d"
    name = f"{LOCOMO}/corpus.jsonl"
    hub.cut_once.add(name)
    download([get_task("LoCoMo")], dest)
    assert (dest / name).read_bytes() == repo.commits[new][name]
    ranged = [(p, r) for m, p, r in hub.requests if m == "GET" and r]
    half = len(repo.commits[new][name]) // 2
    assert len(ranged) == 1 and ranged[0][0].endswith(f"/resolve/{new}/{name}")
    assert 0 < int(ranged[0][1].removeprefix("bytes=").rstrip("-")) <= half  # the rest only
    (dest / name).unlink()  # as if the first run had stopped before this file
    before = len(hub.fetched())
    download([get_task("LoCoMo")], dest)
    assert hub.fetched()[before:] == [name] and (dest / name).read_bytes() == repo.commits[new][name]


def test_pinned_revision_then_a_changed_file(hub: HubServer, official_repo: tuple[Repo, str, str], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    repo, old, new = official_repo
    dest = tmp_path / "d"
    code, _out, err = run_cli(capsys, "download", "--tasks", "LoCoMo", "--to", str(dest), "--revision", old)
    assert code == 0, err
    assert (dest / CHANGED).read_bytes() == repo.commits[old][CHANGED]
    assert manifest(dest / "eval_data")["official/LoCoMo"]["commit"] == old
    before = len(hub.fetched())
    code, _, err = run_cli(capsys, "download", "--tasks", "LoCoMo", "--to", str(dest))  # main: one file changed
    assert code == 0, err
    assert hub.fetched()[before:] == [CHANGED]  # the others are kept: same content
    assert (dest / CHANGED).read_bytes() == repo.commits[new][CHANGED]
    assert manifest(dest / "eval_data")["official/LoCoMo"]["commit"] == new


@pytest.mark.parametrize(("fault", "message"), [
    (404, r"KaLM-Embedding/LMEB@main: not found on http://127.0.0.1:\d+ \(HTTP 404\)"),
    (500, r"KaLM-Embedding/LMEB@main: the hub answered HTTP 500 \(http://127.0.0.1:\d+\); try again later"),
    ("hang", r"KaLM-Embedding/LMEB@main: no answer from http://127.0.0.1:\d+ within 0.3s \(LMEB_HUB_TIMEOUT\)"),
])
def test_hub_failures_are_one_line(hub: HubServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch, fault: object, message: str) -> None:
    import re

    if fault == "hang":  # a short wait for the request that hangs (the others keep 1 s for a loaded machine)
        monkeypatch.setenv("LMEB_HUB_TIMEOUT", "0.3")
    hub.faults["info"] = fault
    code, out, err = run_cli(capsys, "download", "--tasks", "LoCoMo", "--to", str(tmp_path / "d"))
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and re.fullmatch(f"lmeb download: error: {message}.*\n", err), err
    assert not (tmp_path / "d").exists()  # nothing written before the hub answered


def test_unknown_revision_and_file_errors(hub: HubServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "download", "--tasks", "LoCoMo", "--to", str(tmp_path / "d"), "--revision", "v9")
    assert code == 2 and err.startswith("lmeb download: error: KaLM-Embedding/LMEB@v9: no such revision on ")
    hub.faults["file"] = 500  # the listing and the files' metadata work, the files do not
    code, _, err = run_cli(capsys, "download", "--tasks", "LoCoMo", "--to", str(tmp_path / "d"))
    lines = err.splitlines()  # what would come, then why it did not
    assert code == 2 and len(lines) == 2 and lines[0].startswith("lmeb download: 1 dataset, "), err
    assert lines[1].startswith("lmeb download: error: cannot download KaLM-Embedding/LMEB@") and "HTTP 500" in lines[1]


def test_offline_names_the_command(hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    code, _, err = run_cli(capsys, "download", "--tasks", "Gorilla", "--to", str(tmp_path / "d"))
    assert code == 2 and err == ("lmeb download: error: KaLM-Embedding/LMEB@main: HF_HUB_OFFLINE is set, so it "
                                 "cannot be fetched (unset it and run `lmeb download --tasks Gorilla`)\n")
    assert hub.requests == []


def test_a_damaged_file_fails_its_check_and_is_deleted(hub: HubServer, tmp_path: Path) -> None:
    from lmeb.data.hub import download, verify
    from lmeb.tasks.registry import get_task

    plan = download([get_task("LoCoMo")], tmp_path / "d")[0]
    target = tmp_path / "d" / CHANGED
    target.write_bytes(target.read_bytes().replace(b"synthetic", b"SYNTHETIC", 1))
    with pytest.raises(LmebError, match=r"single_hop/queries.jsonl: content does not match the hub's hash .* "
                       r"\(deleted; run `lmeb download --tasks LoCoMo` again\)"):
        verify(plan)
    assert not target.exists()


def test_run_fetches_its_data_when_none_is_given(hub: HubServer, official_repo: tuple[Repo, str, str],
                                                 tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The done-when flow: ``lmeb run --model bm25 --tasks LoCoMo`` on a fresh machine fetches LoCoMo and runs;
    the results record where the data came from."""
    _, _, new = official_repo
    out_dir = tmp_path / "results"
    code, _out, err = run_cli(capsys, "run", "--model", "bm25", "--tasks", "LoCoMo", "--output", str(out_dir),
                             "--no-cache")
    assert code == 0, err
    assert "lmeb: fetching LoCoMo (" in err and f"KaLM-Embedding/LMEB@{new[:12]} into {tmp_path / 'home'}" in err
    assert (tmp_path / "home/.cache/lmeb/data/eval_data/Dialogue/LoCoMo/corpus.jsonl").is_file()
    text = (out_dir / "bm25/wo_inst/LoCoMo.json").read_text()
    assert text.count(f'"commit": "{new}"') == 5  # each subset's data_origin
    requests = len(hub.requests)
    code, _, err = run_cli(capsys, "run", "--model", "bm25", "--tasks", "LoCoMo", "--output", str(out_dir),
                           "--no-cache")
    assert code == 0 and len(hub.requests) == requests and "fetching" not in err  # already there: no hub call
    code, _, err = run_cli(capsys, "run", "--model", "bm25", "--tasks", "Gorilla", "--no-download")
    root = tmp_path / "home/.cache/lmeb/data/eval_data"
    assert code == 2 and err == (f"lmeb run: error: no data for Gorilla under {root}"
                                 " and downloads are off (--no-download): fetch it with `lmeb download --tasks "
                                 "Gorilla` (or pass --data DIR)\n")


def test_files_in_the_hub_cache_are_copied_not_fetched(hub: HubServer, official_repo: tuple[Repo, str, str],
                                                       tmp_path: Path) -> None:
    """A file another hub client (mteb, datasets) already cached at the commit is copied from the cache."""
    from huggingface_hub import hf_hub_download

    from lmeb.data.hub import download
    from lmeb.tasks.registry import get_task

    repo, _, new = official_repo
    name = f"{LOCOMO}/corpus.jsonl"
    hf_hub_download("KaLM-Embedding/LMEB", name, repo_type="dataset", revision=new, endpoint=hub.url)
    assert hub.fetched() == [name]
    download([get_task("LoCoMo")], tmp_path / "d")
    assert name not in hub.fetched()[1:] and len(hub.fetched()) == 12
    assert (tmp_path / "d" / name).read_bytes() == repo.commits[new][name]


@pytest.mark.slow
def test_run_fetches_real_locomo_and_scores_as_the_local_copy(real_data: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The done-when flow on the real LoCoMo: served by the local hub, fetched by ``lmeb run`` with no data
    folder, scored exactly as the same files read from ../shared."""
    import huggingface_hub.constants as constants

    import lmeb

    files = {f"eval_data/{p.relative_to(real_data).as_posix()}": p.read_bytes()
             for p in sorted((real_data / "Dialogue/LoCoMo").rglob("*")) if p.is_file()}
    repo = Repo()
    commit = repo.commit(files)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("LMEB_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with HubServer({"KaLM-Embedding/LMEB": repo}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        code, _, err = run_cli(capsys, "run", "--model", "bm25", "--tasks", "LoCoMo", "--output",
                               str(tmp_path / "r"), "--no-cache")
    assert code == 0 and "lmeb: fetching LoCoMo (2.0 MB)" in err, err
    fetched = lmeb.load_results(tmp_path / "r")
    local = lmeb.evaluate("bm25", tasks="LoCoMo", data=real_data, cache_dir=None, reporter=Reporter(lambda _: None))
    assert {s: r.scores for s, r in fetched[0].subsets.items()} == {s: r.scores for s, r in local[0].subsets.items()}
    assert all(r.provenance["data_origin"]["commit"] == commit for r in fetched[0].subsets.values())


def test_data_origin_needs_every_file_as_a_download_recorded_it(tmp_path: Path) -> None:
    """Both sources of one dataset in one data root keep their own entries; an edited file, another dataset
    or a file outside the root give no origin."""
    from lmeb.data.origin import data_origin, write_entry
    from lmeb.tasks.registry import get_task

    corpus = tmp_path / "Dialogue/LoCoMo/corpus.jsonl"
    copy = tmp_path / "LoCoMo/data/corpus.parquet"
    for source, repo, rel, sha in (("official", "KaLM-Embedding/LMEB", "Dialogue/LoCoMo/corpus.jsonl", "aa"),
                                   ("mteb", "mteb/LoCoMo", "LoCoMo/data/corpus.parquet", "bb")):
        write_entry(tmp_path, {"dataset": "LoCoMo", "source": source, "repo": repo, "revision": "main",
                               "commit": f"{source}-commit", "files": {rel: sha}})
    task = get_task("LoCoMo")
    assert data_origin(tmp_path, task, {str(corpus): "aa"}) == {
        "source": "official", "repo": "KaLM-Embedding/LMEB", "revision": "main", "commit": "official-commit"}
    assert data_origin(tmp_path, task, {str(copy): "bb"})["commit"] == "mteb-commit"  # type: ignore[index]
    assert data_origin(tmp_path, task, {str(corpus): "aa", str(copy): "bb"}) is None  # no one download has both
    assert data_origin(tmp_path, task, {str(corpus): "edited"}) is None
    assert data_origin(tmp_path, get_task("Gorilla"), {str(corpus): "aa"}) is None
    assert data_origin(tmp_path, task, {str(tmp_path.parent / "corpus.jsonl"): "aa"}) is None


@pytest.mark.parametrize("damage", [b"[" * 100_000, b"\xff\xfe", b"{"])
def test_a_damaged_download_manifest_gives_no_origin_and_no_traceback(tmp_path: Path, damage: bytes) -> None:
    """A manifest nested 100,000 deep raised RecursionError (the reader caught ValueError only)."""
    from lmeb.data.origin import MANIFEST, data_origin, read_manifest

    (tmp_path / MANIFEST).write_bytes(damage)
    assert read_manifest(tmp_path) == {"datasets": {}}
    assert data_origin(tmp_path, get_task("LoCoMo"), {str(tmp_path / "x.jsonl"): "sha"}) is None
