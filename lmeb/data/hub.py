"""Fetch LMEB datasets from the Hugging Face hub: only the selected ones, at a pinned revision, checked.

Two sources hold the same benchmark:

* ``official``: the release, ``KaLM-Embedding/LMEB`` (one dataset repository, ``eval_data/<Type>/<Dataset>/``
  in the official layout). Its revision is ``OFFICIAL_REVISION`` unless ``revision=`` says otherwise; the
  commit it resolves to is recorded.
* ``mteb``: mteb's copies, one repository per dataset (``mteb/<Name>``, HF ``datasets`` format with
  ``<subset>-corpus|queries|qrels|top_ranked`` configs), each at the revision mteb 2.26 pins (the registry's
  ``mteb.revision``).

A download goes under a destination folder ``DEST`` (``$LMEB_DATA`` or ``~/.cache/lmeb/data``): the data root
is ``DEST/eval_data``, which holds official datasets as ``<Type>/<Dataset>/`` and mteb copies as ``<Name>/``
(``lmeb.data.mteb_format`` reads those). ``huggingface_hub.snapshot_download`` fetches the files of one dataset
(allow-patterns), resuming an interrupted file; then every file is checked against the size and hash the hub
lists for it (git blob sha1, or the LFS sha256), and a manifest in the data root (``MANIFEST``) records per
dataset the source, repository, revision, commit and each file's sha256, so a result can say which
release it was computed from (``data_origin``). Every failure (not found, a server error, no answer within
the timeout, offline mode, a file that fails its check) is one ``LmebError`` line.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmeb.data.origin import write_entry
from lmeb.errors import LmebError
from lmeb.tasks.registry import Task

OFFICIAL_REPO = "KaLM-Embedding/LMEB"
# The official repository's revision lmeb fetches by default. No commit of it could be checked where lmeb
# was built (no hub access), so this follows the branch; the commit each download resolves to is recorded
# in the manifest and the results, and --revision pins one.
OFFICIAL_REVISION = "main"
SOURCES = ("official", "mteb")
HUB_FOLDER = "eval_data"  # the official repository's top folder, and the data root under DEST
DEFAULT_TIMEOUT = 30.0  # seconds a hub request may go unanswered ($LMEB_HUB_TIMEOUT)


def default_destination() -> Path:
    """Where downloads go by default: ``$LMEB_DATA`` or ``~/.cache/lmeb/data`` (a ``$LMEB_DATA`` naming the
    ``eval_data`` data root itself means its parent, so the files land in that root)."""
    dest = Path(os.environ.get("LMEB_DATA") or "~/.cache/lmeb/data").expanduser()
    return dest.parent if dest.name == HUB_FOLDER else dest


def data_folder(dest: str | Path) -> Path:
    """The data root of a download destination (what ``--data`` takes): ``DEST/eval_data``."""
    return Path(dest).expanduser() / HUB_FOLDER


def human_size(n: int) -> str:
    """``2.0 MB``: a byte count as the one-line messages show it (powers of 1000)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


@dataclass
class Plan:
    """One dataset to fetch: where from (repository, revision, resolved commit), which files, where to."""

    task: Task
    source: str
    repo: str
    revision: str
    prefix: str  # the dataset's folder in the repository ("" = the whole repository)
    local_dir: Path  # snapshot_download's local_dir: the repository's root maps here
    commit: str = ""
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # repo path -> size, blob_id, lfs_sha256

    @property
    def size(self) -> int:
        return sum(f["size"] for f in self.files.values())

    @property
    def where(self) -> Path:
        return self.local_dir / self.prefix if self.prefix else self.local_dir

    @property
    def label(self) -> str:
        return f"{self.repo}@{self.commit[:12] or self.revision}"


def plan_for(task: Task, source: str, dest: str | Path, revision: str | None = None) -> Plan:
    """What fetching ``task`` from ``source`` into ``dest`` means (nothing asked of the hub yet)."""
    dest = Path(dest).expanduser()
    if source == "official":
        return Plan(task, source, OFFICIAL_REPO, revision or OFFICIAL_REVISION, f"{HUB_FOLDER}/{task.path}", dest)
    if source == "mteb":
        return Plan(task, source, task.mteb_hf_dataset, revision or task.mteb_revision, "",
                    data_folder(dest) / task.mteb_hf_dataset.rsplit("/", 1)[-1])
    raise LmebError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")


def hub_timeout() -> float:
    value = os.environ.get("LMEB_HUB_TIMEOUT")
    try:
        return float(value) if value else DEFAULT_TIMEOUT
    except ValueError:
        raise LmebError(f"LMEB_HUB_TIMEOUT={value!r} is not a number of seconds") from None


def _endpoint() -> str:
    """The hub to ask: ``$HF_ENDPOINT`` as set now (huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _hub_error(where: str, exc: BaseException, timeout: float, command: str) -> LmebError:
    """One line for whatever the hub client raised about ``where`` (``repo@revision``); ``command`` fetches it."""
    try:
        import httpx2 as httpx  # huggingface_hub 2.x's HTTP client
    except ImportError:  # pragma: no cover - huggingface_hub 1.x
        import httpx  # type: ignore[no-redef]
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    while isinstance(exc, LocalEntryNotFoundError) and exc.__cause__ is not None and not offline():
        exc = exc.__cause__  # "cannot find the files in the local cache" hides what the hub said
    if isinstance(exc, OfflineModeIsEnabled) or (isinstance(exc, LocalEntryNotFoundError) and offline()):
        return LmebError(f"{where}: HF_HUB_OFFLINE is set, so it cannot be fetched (unset it and run `{command}`)")
    if isinstance(exc, RevisionNotFoundError):
        return LmebError(f"{where}: no such revision on {_endpoint()}")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    missing = isinstance(exc, (RepositoryNotFoundError, EntryNotFoundError))
    if (missing and not isinstance(exc, LocalEntryNotFoundError)) or status == 404:
        return LmebError(f"{where}: not found on {_endpoint()} (HTTP 404)")
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return LmebError(f"{where}: the hub answered HTTP {exc.response.status_code} ({_endpoint()}); try again "
                         f"later (`{command}` resumes)")
    if isinstance(exc, httpx.TimeoutException):
        return LmebError(f"{where}: no answer from {_endpoint()} within {timeout:g}s (LMEB_HUB_TIMEOUT)")
    if isinstance(exc, httpx.HTTPError):
        return LmebError(f"{where}: cannot reach {_endpoint()} ({type(exc).__name__}: {_first_line(exc)})")
    return LmebError(f"{where}: cannot download: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


def snapshot(repo: str, revision: str | None, local_dir: str | Path, patterns: list[str] | str | None = None,
             progress: bool = False, timeout: float | None = None, command: str = "lmeb download") -> Path:
    """``huggingface_hub.snapshot_download`` of a dataset repository into ``local_dir`` (resumable; files
    already there are kept), its errors as one line; returns the folder."""
    from huggingface_hub import snapshot_download

    timeout = hub_timeout() if timeout is None else timeout
    where = f"cannot download {repo}@{revision or 'main'} to {local_dir}"
    kwargs: dict[str, Any] = {} if progress else {"tqdm_class": _silent_bar()}
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)  # its retry warnings: the outcome is reported here, in one line
    try:
        path = snapshot_download(repo_id=repo, repo_type="dataset", revision=revision, local_dir=str(local_dir),
                                 allow_patterns=patterns, endpoint=_endpoint(), etag_timeout=timeout, **kwargs)
    except Exception as exc:  # one line, whatever the client raised
        raise _hub_error(where, exc, timeout, command) from None
    finally:
        hub_log.setLevel(level)
    return Path(path)


def fetch_files(local_dir: str | Path, allow_patterns: list[str] | str | None = None, revision: str | None = None,
                repo: str = OFFICIAL_REPO) -> Path:
    """Any files of the official repository by pattern (e.g. ``"*/LoCoMo/*"``) into ``local_dir``; returns the
    data root (``local_dir/eval_data``). Files already there are not fetched again; with
    ``HF_HUB_OFFLINE=1`` it only resolves what is there. ``download`` fetches datasets by name, checked."""
    snapshot(repo, revision, local_dir, allow_patterns)
    return data_folder(local_dir)


def resolve(plan: Plan, timeout: float | None = None) -> Plan:
    """Ask the hub for the commit ``plan.revision`` names and the dataset's files (sizes and hashes)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import OfflineModeIsEnabled
    from huggingface_hub.hf_api import RepoFile
    from huggingface_hub.utils import build_hf_headers, paginate

    timeout = hub_timeout() if timeout is None else timeout
    try:
        if offline():
            raise OfflineModeIsEnabled("offline")
        endpoint = _endpoint()
        info = HfApi(endpoint=endpoint).dataset_info(plan.repo, revision=plan.revision, timeout=timeout)
        if not info.sha:
            raise LmebError(f"{plan.repo}@{plan.revision}: the hub named no commit ({endpoint})")
        plan.commit = info.sha
        url = f"{endpoint}/api/datasets/{plan.repo}/tree/{plan.commit}" + (f"/{plan.prefix}" if plan.prefix else "")
        items = paginate(url, params={"recursive": True, "expand": False}, headers=build_hf_headers(), timeout=timeout)
        plan.files = {}
        for item in items:
            if item.get("type") != "file":
                continue
            f = RepoFile(**item)
            plan.files[f.path] = {"size": f.lfs.size if f.lfs else f.size, "blob_id": f.blob_id,
                                  "lfs_sha256": f.lfs.sha256 if f.lfs else None}
    except LmebError:
        raise
    except Exception as exc:  # the hub client's errors: one line each (see _hub_error)
        raise _hub_error(f"{plan.repo}@{plan.revision}", exc, timeout, _command(plan)) from None
    if not plan.files:
        raise LmebError(f"{plan.label}: no files under {plan.prefix or 'the repository'} ({_endpoint()})")
    return plan


def _hashes(path: Path, size: int) -> tuple[str, str]:
    """(sha256, git blob sha1) of a file, read once."""
    sha256, blob = hashlib.sha256(), hashlib.sha1(f"blob {size}\0".encode())  # git's blob id
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha256.update(chunk)
            blob.update(chunk)
    return sha256.hexdigest(), blob.hexdigest()


def verify(plan: Plan) -> dict[str, str]:
    """Check every fetched file against the hub's size and hash; returns repo path -> sha256.

    A file that fails is deleted (with huggingface_hub's record of it) so the next run fetches it again.
    """
    out = {}
    for name, meta in plan.files.items():
        path = plan.local_dir / name
        problem = None
        if not path.is_file():
            problem = "missing after the download"
        elif path.stat().st_size != meta["size"]:
            problem = f"{path.stat().st_size} bytes, the hub lists {meta['size']}"
        else:
            sha256, blob = _hashes(path, meta["size"])
            expected = meta["lfs_sha256"] or meta["blob_id"]
            if (sha256 if meta["lfs_sha256"] else blob) != expected:
                problem = f"content does not match the hub's hash {expected[:12]}"
            out[name] = sha256
        if problem:
            path.unlink(missing_ok=True)
            (plan.local_dir / ".cache" / "huggingface" / "download" / f"{name}.metadata").unlink(missing_ok=True)
            raise LmebError(f"{path}: {problem} (deleted; run `{_command(plan)}` again)")
    return out


def _silent_bar() -> type:
    from tqdm.auto import tqdm

    class Silent(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return Silent


def _command(plan: Plan) -> str:
    """The command that fetches the plan's dataset."""
    source = "" if plan.source == "official" else f" --source {plan.source}"
    return f"lmeb download --tasks {plan.task.name}{source}"


def fetch_plan(plan: Plan, progress: bool = False, timeout: float | None = None) -> dict[str, str]:
    """Download the files of a resolved plan (resumable, pinned to its commit), check them, record them."""
    snapshot(plan.repo, plan.commit, plan.local_dir, [f"{plan.prefix}/*"] if plan.prefix else None, progress,
             timeout, _command(plan))
    hashes = verify(plan)
    record(plan, hashes)
    return hashes


# ------------------------------------------------------------------------------------------ manifest
def _manifest_root(plan: Plan) -> Path:
    """The data root a plan's files land under (its manifest lives there)."""
    return data_folder(plan.local_dir) if plan.source == "official" else plan.local_dir.parent


def _root_relative(plan: Plan, name: str) -> str:
    """A repository path as a path under the data root (``eval_data/Dialogue/LoCoMo/x`` -> ``Dialogue/LoCoMo/x``)."""
    if plan.source == "official":
        return Path(name).relative_to(HUB_FOLDER).as_posix()
    return f"{plan.local_dir.name}/{name}"


def record(plan: Plan, hashes: dict[str, str]) -> None:
    """Write (atomically) the dataset's entry in the manifest of its data root."""
    write_entry(_manifest_root(plan), {
        "dataset": plan.task.name, "source": plan.source, "repo": plan.repo, "revision": plan.revision,
        "commit": plan.commit, "bytes": plan.size,
        "files": {_root_relative(plan, n): sha for n, sha in sorted(hashes.items())},
    })


# -------------------------------------------------------------------------------------------- front
def download(tasks: Sequence[Task], dest: str | Path | None = None, source: str = "official",
             revision: str | None = None, progress: bool = False, log: Callable[[str], None] | None = None,
             announce: Callable[[list[Plan]], None] | None = None) -> list[Plan]:
    """Fetch ``tasks`` from ``source`` into ``dest`` (default ``default_destination()``); returns the plans.

    Every dataset is resolved first (so a 404 or an offline hub fails before any byte is written and
    ``announce`` can say how much will come), then fetched and checked one by one; ``log`` gets one line
    per dataset.
    """
    if not tasks:
        raise LmebError("no dataset selected")
    dest = Path(dest).expanduser() if dest is not None else default_destination()
    if dest.exists() and not dest.is_dir():
        raise LmebError(f"{dest}: not a folder")
    timeout = hub_timeout()
    plans = [resolve(plan_for(t, source, dest, revision), timeout) for t in tasks]
    if announce is not None:
        announce(plans)
    for plan in plans:
        fetch_plan(plan, progress, timeout)
        if log is not None:
            log(f"{plan.task.name}: {len(plan.files)} files, {human_size(plan.size)} from {plan.label} ({plan.source}),"
                f" checked -> {plan.where}")
    return plans


def fetch_for_run(tasks: str | Sequence[str] | None, types: Sequence[str] | None, allowed: bool,
                  log: Callable[[str], None], available: Callable[[Path, list[Task]], list[Task]],
                  source: str = "official", progress: bool = False) -> Path:
    """The data root of a run given no data folder: ``~/.cache/lmeb/data/eval_data``, after fetching the
    selected datasets not there yet (one line saying what and how much), unless ``allowed`` is False or
    the hub is offline, in which case the error names the command that fetches them. With no selection,
    the datasets already there are used. ``available`` is the data layer's rule for which datasets a
    folder holds (``lmeb.data.reader.available_tasks``; passed in, so this hub client does not depend on the
    readers)."""
    from lmeb.tasks.registry import select

    dest = default_destination()
    root = data_folder(dest)
    spec = ",".join(tasks) if isinstance(tasks, (list, tuple)) else tasks
    if not spec and not types:
        if root.is_dir():
            return root
        raise LmebError(f"no data folder (--data, LMEB_DATA) and nothing under {root}: name the datasets to fetch "
                        "(--tasks A,B or --type TYPE) or run `lmeb download --tasks A,B` first")
    wanted = [s.task for s in select(spec, list(types) if types else None)]
    present = {t.name for t in available(root, wanted)} if root.is_dir() else set()
    missing = [t for t in wanted if t.name not in present]
    if not missing:
        return root
    names = ",".join(t.name for t in missing)
    if not allowed or offline():
        why = "downloads are off (--no-download)" if not allowed else "HF_HUB_OFFLINE is set"
        command = f"lmeb download --tasks {names}" + ("" if source == "official" else f" --source {source}")
        raise LmebError(f"no data for {names} under {root} and {why}: fetch it with `{command}` (or pass --data DIR)")

    def announce(plans: list[Plan]) -> None:
        log(f"lmeb: fetching {names} ({human_size(sum(p.size for p in plans))}) from {plans[0].label} into {dest} "
            "(no --data, no LMEB_DATA; --no-download turns this off)")

    download(missing, dest, source=source, progress=progress, announce=announce)
    return root
