"""A tiny Hugging Face hub on 127.0.0.1 for tests: the endpoints huggingface_hub 2.4 calls to download.

* ``GET /api/datasets/<repo>/revision/<rev>``: the repository's info, ``sha`` = the commit ``rev`` names;
* ``GET /api/datasets/<repo>/tree/<rev>[/<path>]``: the file listing (``oid`` = git blob sha1, ``size``,
  and ``lfs`` with the sha256 for LFS files);
* ``HEAD``/``GET /datasets/<repo>/resolve/<rev>/<path>``: ``X-Repo-Commit``, ``ETag`` (``X-Linked-Etag`` and
  ``X-Linked-Size`` for LFS files), ``Content-Length``, and ``Range: bytes=N-`` answered with 206.

Errors carry ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) as the hub's do.
Faults are injected per endpoint kind (``info``, ``tree``, ``resolve``; ``file`` = a resolve GET only): an
HTTP status or ``"hang"``; and
``cut_once`` names files whose first full GET is cut in the middle (the client must resume with Range).
The request loop is bounded: at most ``max_requests`` requests and ``max_seconds`` seconds, and a hang
lasts at most ``hang_seconds`` (or until the server stops).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    """A dataset repository: commits (sha -> {path: bytes}) and branches (name -> sha)."""

    def __init__(self, lfs: tuple[str, ...] = ("corpus.jsonl",)) -> None:
        self.commits: dict[str, dict[str, bytes]] = {}
        self.branches: dict[str, str] = {}
        self.lfs = lfs

    def commit(self, files: dict[str, bytes], branch: str = "main", sha: str | None = None) -> str:
        """Add a commit (its sha from the content unless given) and point ``branch`` at it."""
        listing = json.dumps(sorted((k, git_blob_id(v)) for k, v in files.items()))
        sha = sha or hashlib.sha1(listing.encode()).hexdigest()
        self.commits[sha] = dict(files)
        self.branches[branch] = sha
        return sha

    def resolve(self, rev: str) -> str | None:
        return self.branches.get(rev) or (rev if rev in self.commits else None)

    def is_lfs(self, path: str) -> bool:
        return path.endswith(self.lfs)


class HubServer:
    """Serves ``repos`` (repo id -> Repo) on 127.0.0.1 in a background thread; ``url`` is its endpoint."""

    def __init__(self, repos: dict[str, Repo], max_requests: int = 2000, max_seconds: float = 120.0,
                 hang_seconds: float = 5.0) -> None:
        self.repos = repos
        self.faults: dict[str, Any] = {}
        self.cut_once: set[str] = set()
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.max_requests, self.max_seconds, self.hang_seconds = max_requests, max_seconds, hang_seconds
        self.stopped = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.httpd.timeout = 0.1
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self.stopped.is_set() and len(self.requests) < self.max_requests and time.monotonic() < deadline:
            self.httpd.handle_request()

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.httpd.server_close()

    def fetched(self, suffix: str = "") -> list[str]:
        """Paths of the files served by a GET on the resolve endpoint (optionally ending with ``suffix``)."""
        return [p.split("/resolve/", 1)[1].split("/", 1)[1] for m, p, _ in self.requests
                if m == "GET" and "/resolve/" in p and p.endswith(suffix)]


def _handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out in separate writes: without TCP_NODELAY each answer on a kept-alive
        # connection waits for the client's delayed ACK (Nagle), tens of ms a request
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _error(self, status: int, code: str | None = None, head: bool = False) -> None:
            body = json.dumps({"error": code or f"HTTP {status}"}).encode()
            self.send_response(status)
            if code:
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _json(self, obj: Any) -> None:
            body = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _fault(self, kind: str, head: bool = False) -> bool:
            fault = hub.faults.get(kind)
            if fault is None:
                return False
            if fault == "hang":
                hub.stopped.wait(hub.hang_seconds)
                self.close_connection = True
                return True
            self._error(int(fault), head=head)
            return True

        def _route(self, head: bool = False) -> None:
            path = urlsplit(self.path).path
            hub.requests.append((self.command, path, self.headers.get("Range")))
            if path.startswith("/api/datasets/"):
                org, name, kind, rev, *rest = [*path[len("/api/datasets/"):].split("/", 4), ""]
                self._api(f"{org}/{name}", kind, unquote(rev), unquote(rest[0]) if rest else "")
            elif path.startswith("/datasets/") and "/resolve/" in path:
                repo_id, tail = path[len("/datasets/"):].split("/resolve/", 1)
                rev, _, file = tail.partition("/")
                self._resolve(repo_id, unquote(rev), unquote(file), head)
            else:
                self._error(404, "RepoNotFound", head)

        def _api(self, repo_id: str, kind: str, rev: str, sub: str) -> None:
            repo = hub.repos.get(repo_id)
            if kind == "revision" and self._fault("info"):
                return
            if kind == "tree" and self._fault("tree"):
                return
            if repo is None:
                return self._error(404, "RepoNotFound")
            sha = repo.resolve(rev)
            if sha is None:
                return self._error(404, "RevisionNotFound")
            files = repo.commits[sha]
            if kind == "revision":
                return self._json({"id": repo_id, "sha": sha, "private": False,
                                   "siblings": [{"rfilename": p} for p in sorted(files)]})
            prefix = sub.strip("/")
            entries = []
            for p in sorted(files):
                if prefix and not p.startswith(prefix + "/"):
                    continue
                data = files[p]
                entry: dict[str, Any] = {"type": "file", "oid": git_blob_id(data), "size": len(data), "path": p}
                if repo.is_lfs(p):
                    entry["size"] = 134  # the pointer file's size, as the hub lists it
                    entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
                entries.append(entry)
            return self._json(entries)

        def _resolve(self, repo_id: str, rev: str, file: str, head: bool) -> None:
            if self._fault("resolve", head) or (not head and self._fault("file")):
                return
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", head)
            sha = repo.resolve(rev)
            if sha is None:
                return self._error(404, "RevisionNotFound", head)
            data = repo.commits[sha].get(file)
            if data is None:
                return self._error(404, "EntryNotFound", head)
            start = 0
            ranged = self.headers.get("Range")
            if ranged and ranged.startswith("bytes="):
                start = int(ranged[len("bytes="):].split("-", 1)[0] or 0)
            self.send_response(206 if start else 200)
            self.send_header("X-Repo-Commit", sha)
            etag = hashlib.sha256(data).hexdigest() if repo.is_lfs(file) else git_blob_id(data)
            self.send_header("ETag", f'"{etag}"')
            if repo.is_lfs(file):
                self.send_header("X-Linked-Etag", f'"{etag}"')
                self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("Accept-Ranges", "bytes")
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            if head:
                return
            if not start and file in hub.cut_once:
                hub.cut_once.discard(file)
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(data[start:])

        def do_GET(self) -> None:
            self._route()

        def do_HEAD(self) -> None:
            self._route(head=True)

    return Handler
