"""A local stand-in for the Hugging Face Hub API, enough for ``fusedata push``.

It serves, on 127.0.0.1 only, the endpoints huggingface_hub 2.x calls for
``whoami`` / ``create_repo`` / ``create_branch`` / ``list_repo_files`` /
``repo_info`` / ``upload_folder`` (``preupload`` then ``commit``, ndjson), keeps
each repository's files per branch in memory, and records every request
(method, path, query, whether it was authenticated) so tests can assert the
call sequence.  Faults are injected per endpoint (``fail``) to interrupt an
upload half-way.

Scope: ``preupload`` answers ``uploadMode: regular`` for every file, so the
content travels base64 in the commit payload; the Xet/LFS byte transfer (hf_xet's
Rust client talking to the CAS service) is not emulated.  The resume logic under
test (the client skipping files whose remote oid equals the local one) is the
same for both modes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

#: a ``fail`` entry that makes the request hang until the hub shuts down (to kill a
#: client mid-request)
HANG = -1


def git_oid(data: bytes) -> str:
    """The git blob sha1, which huggingface_hub compares to skip unchanged regular files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    owner: str
    private: bool = False
    branches: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    commits: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    authenticated: bool
    status: int = 0


class FakeHub:
    """Start with ``with FakeHub(token=..., user=..., orgs=[...]) as hub: hub.url``."""

    def __init__(self, token: str, user: str = "tester", orgs: tuple[str, ...] = ()):
        self.token = token
        self.user = user
        self.orgs = list(orgs)
        self.repos: dict[str, Repo] = {}
        self.calls: list[Call] = []
        #: endpoint name ("commit", "preupload", ...) -> HTTP statuses to answer instead of
        #: handling the request, one per matching request in order (0: handle it normally,
        #: HANG: never answer)
        self.fail: dict[str, list[int]] = {}
        #: README texts sent to ``/api/validate-yaml``
        self.validated: list[str] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                hub._handle(self, "GET")

            def do_POST(self) -> None:
                hub._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------ helpers
    def add_repo(self, repo_id: str, owner: str, files: dict[str, bytes] | None = None) -> Repo:
        repo = Repo(owner=owner)
        repo.branches["main"].update(files or {})
        self.repos[repo_id] = repo
        return repo

    def files(self, repo_id: str, branch: str = "main") -> dict[str, bytes]:
        return dict(self.repos[repo_id].branches[branch])

    def endpoints(self) -> list[str]:
        """The recorded calls as ``METHOD endpoint`` (repo ids kept, queries dropped)."""
        return [f"{c.method} {c.path}" for c in self.calls]

    def _can_write(self, namespace: str) -> bool:
        return namespace == self.user or namespace in self.orgs

    # ------------------------------------------------------------------ dispatch
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        path = unquote(parts.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        auth = h.headers.get("Authorization", "")
        authed = auth == f"Bearer {self.token}"
        call = Call(method, path, parse_qs(parts.query), authed)
        with self._lock:
            self.calls.append(call)
            status, payload, headers = self._route(method, path, body, auth, authed)
        call.status = status
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _route(self, method: str, path: str, body: bytes, auth: str, authed: bool
               ) -> tuple[int, Any, dict[str, str]]:
        if auth and not authed:
            return 401, {"error": "Invalid credentials in Authorization header"}, {
                "X-Error-Message": "Invalid credentials in Authorization header"}
        segs = path.strip("/").split("/")
        if segs == ["api", "agent-harnesses"]:  # huggingface_hub's once-a-day registry look-up
            return 200, {"standardEnvVars": [], "harnesses": {}}, {}
        name = self._endpoint_name(method, segs)
        if name and self.fail.get(name):
            status = self.fail[name].pop(0)
            if status == HANG:
                self._lock.release()  # let other requests through while this one hangs
                try:
                    self._closing.wait()
                finally:
                    self._lock.acquire()
                return 503, {"error": "fake hub shutting down"}, {}
            if status:
                return status, {"error": f"injected failure of {name}"}, {}
        if not authed and name in ("whoami", "create", "preupload", "commit", "branch"):
            return 401, {"error": "authentication required"}, {}
        if name == "whoami":
            return 200, {"type": "user", "name": self.user,
                         "orgs": [{"name": o, "roleInOrg": "write"} for o in self.orgs],
                         "auth": {"type": "access_token",
                                  "accessToken": {"displayName": "test", "role": "write"}}}, {}
        if name == "validate-yaml":
            return self._validate_yaml(json.loads(body))
        if name == "create":
            req = json.loads(body)
            ns = req.get("organization") or self.user
            repo_id = f"{ns}/{req['name']}"
            if req.get("type") != "dataset":
                return 400, {"error": "this fake hub only hosts datasets"}, {}
            if not self._can_write(ns):
                return 403, {"error": f'You don\'t have the rights to create a dataset under '
                                      f'the namespace "{ns}"'}, {}
            if repo_id in self.repos:
                return 409, {"error": "You already created this dataset repo",
                             "url": f"{self.url}/datasets/{repo_id}"}, {}
            self.add_repo(repo_id, ns).private = req.get("visibility") == "private"
            return 200, {"url": f"{self.url}/datasets/{repo_id}"}, {}
        if len(segs) >= 4 and segs[:2] == ["api", "datasets"]:
            repo_id = f"{segs[2]}/{segs[3]}"
            repo = self.repos.get(repo_id)
            if repo is None:
                return 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}
            rest = segs[4:]
            op, rev = (rest[0], "/".join(rest[1:]) or "main") if rest else ("info", "main")
            writing = op in ("preupload", "commit", "branch")
            if writing and not self._can_write(repo.owner):
                return 403, {"error": "You don't have write access to this repository"}, {}
            if op == "branch":
                if rev in repo.branches:
                    return 409, {"error": "Branch already exists"}, {}
                repo.branches[rev] = dict(repo.branches["main"])
                return 200, {}, {}
            if rev not in repo.branches:
                return 404, {"error": "Revision not found"}, {"X-Error-Code": "RevisionNotFound"}
            files = repo.branches[rev]
            if op == "tree":
                return 200, [{"type": "file", "path": p, "size": len(b), "oid": git_oid(b)}
                             for p, b in sorted(files.items())], {}
            if op in ("revision", "info"):
                sha = repo.commits[-1]["oid"] if repo.commits else "0" * 40
                return 200, {"id": repo_id, "sha": sha, "private": repo.private,
                             "siblings": [{"rfilename": p} for p in sorted(files)]}, {}
            if op == "preupload":
                req = json.loads(body)
                return 200, {"files": [
                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                     "oid": git_oid(files[f["path"]]) if f["path"] in files else None}
                    for f in req["files"]]}, {}
            if op == "commit":
                return self._commit(repo_id, repo, rev, body)
        return 404, {"error": f"fake hub: no route for {method} {path}"}, {}

    @staticmethod
    def _endpoint_name(method: str, segs: list[str]) -> str | None:
        if segs[:2] == ["api", "whoami-v2"]:
            return "whoami"
        if segs[:3] == ["api", "repos", "create"]:
            return "create"
        if segs[:2] == ["api", "validate-yaml"]:
            return "validate-yaml"
        if len(segs) >= 5 and segs[:2] == ["api", "datasets"]:
            return segs[4]
        return None

    def _validate_yaml(self, req: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        """What the Hub checks before a README upload, for dataset cards: front matter that
        parses, and ``configs`` entries with a name and ``data_files``."""
        import yaml

        self.validated.append(req["content"])
        text = req["content"]
        errors: list[str] = []
        if not text.startswith("---\n") or "\n---\n" not in text[4:]:
            errors.append("no YAML front matter")
        else:
            try:
                meta = yaml.safe_load(text[4:text.index("\n---\n", 4)])
            except yaml.YAMLError as e:
                meta, errors = None, [f"invalid YAML: {e}"]
            for c in (meta or {}).get("configs", []) if isinstance(meta, dict) else []:
                if not c.get("config_name") or not c.get("data_files"):
                    errors.append(f"config without config_name or data_files: {c}")
        if errors:
            return 400, {"errors": [{"message": m} for m in errors]}, {}
        return 200, {"warnings": []}, {}

    def _commit(self, repo_id: str, repo: Repo, rev: str, body: bytes
                ) -> tuple[int, Any, dict[str, str]]:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = next(x["value"] for x in lines if x["key"] == "header")
        files = dict(repo.branches[rev])
        added, deleted = [], []
        for item in lines:
            v = item["value"]
            if item["key"] == "file":
                files[v["path"]] = base64.b64decode(v["content"])
                added.append(v["path"])
            elif item["key"] == "deletedFile":
                files.pop(v["path"], None)
                deleted.append(v["path"])
            elif item["key"] != "header":
                return 400, {"error": f"fake hub: unsupported commit item {item['key']}"}, {}
        oid = hashlib.sha1(f"{repo_id}{len(repo.commits)}{sorted(added)}".encode()).hexdigest()
        repo.branches[rev] = files
        repo.commits.append({"oid": oid, "branch": rev, "summary": header["summary"],
                             "added": added, "deleted": deleted})
        return 200, {"commitUrl": f"{self.url}/datasets/{repo_id}/commit/{oid}",
                     "commitOid": oid, "pullRequestUrl": None}, {}
