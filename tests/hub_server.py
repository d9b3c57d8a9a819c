"""A local server for the part of the Hugging Face Hub HTTP API that `huggingface_hub` 2.x uses.

Tests point `HF_ENDPOINT` at it, so `push_to_hub`, `from_pretrained(repo_id)`, `snapshot_download` and the
rest run the real client code without the internet. Standard library only; run it as a script:

    python tests/hub_server.py --root /tmp/hub --port 0 [--token TOKEN=USER[:read]] [--fault FAULT]

It prints `listening on http://127.0.0.1:PORT` once it accepts connections.

What it keeps, on disk under `--root` (so a restarted server sees the same Hub):
- `blobs/<sha256>`: file contents, stored by hash;
- `repos.json`: repos (type, id, private flag), branches and commits; a commit maps paths to blob hashes.
  It is replaced atomically (`os.replace`) only after every blob of a commit is stored, so a commit either
  lands whole or not at all;
- `requests.log`: one JSON line per request (method, route, status, path; the paths a commit added or
  deleted), written before the answer goes out, for tests to check what was called.

The process exits by itself when its parent process goes away, so a crashed test run leaves no server behind.

Faults, for failure tests: `die-mid-commit` stores half of a commit's blobs then exits the process without
answering; `die-mid-download` (or `die-mid-download:PATH`, for one file only) sends the headers and half of
a file's bytes then exits.
"""

import argparse
import base64
import contextlib
import datetime
import hashlib
import importlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

WRITE_TOKEN = "hf_sora_test_write_token"  # user "sora-tester", may write to its own namespace
READ_TOKEN = "hf_sora_test_read_token"  # user "sora-tester", read-only
OTHER_TOKEN = "hf_sora_test_other_token"  # user "someone-else", may write to its own namespace only
DEFAULT_TOKENS = {
    WRITE_TOKEN: ("sora-tester", "write"),
    READ_TOKEN: ("sora-tester", "read"),
    OTHER_TOKEN: ("someone-else", "write"),
}
REPO_TYPES = ("model", "dataset", "space")
FORBIDDEN_FOLDERS = (".git", ".cache")
_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_BRANCH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_GITATTRIBUTES = (
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
)


class HubError(Exception):
    """An error answered to the client: status, Hub error code (`X-Error-Code`) and message."""

    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra or {}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def git_blob_oid(content: bytes) -> str:
    """The git object id of a file, which the Hub returns as `oid` and `ETag` for regular files."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def validate_repo_id(repo_id: str) -> None:
    """Raise HubError(400) unless `repo_id` is `namespace/name` with Hub-valid parts."""
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(
        _NAME_RE.match(part) and ".." not in part and "--" not in part and len(part) <= 96 for part in parts
    ):
        raise HubError(
            400, f"Invalid repo id {repo_id!r}: expected 'namespace/name' with letters, digits, '-', '_', '.'"
        )


def validate_path(path: str, write: bool = True) -> str:
    """Raise HubError(400) for absolute paths, `..`/`.`/empty segments, and (for writes) reserved folders."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(part in ("", ".", "..") for part in parts):
        raise HubError(
            400, f"Invalid path in repo {path!r}: must be relative, without '..' or empty segments"
        )
    reserved = [part for part in parts if part in FORBIDDEN_FOLDERS]
    if write and reserved:
        raise HubError(400, f"Invalid path in repo {path!r}: '{reserved[0]}' folders cannot be written")
    return path


class HubStore:
    """Repos, commits and blobs of the local Hub, persisted under `root`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.blob_dir = self.root / "blobs"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.root / "repos.json"
        self.repos: dict = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        self.lock = threading.RLock()
        self._blob_oids: dict[str, str] = {}

    def save(self) -> None:
        """Write the whole state to a temporary file and swap it in: readers never see half a state."""
        tmp = self.state_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.repos, indent=1, sort_keys=True))
        os.replace(tmp, self.state_path)

    def put_blob(self, content: bytes) -> str:
        sha256 = hashlib.sha256(content).hexdigest()
        target = self.blob_dir / sha256
        if not target.exists():
            tmp = self.blob_dir / f"{sha256}.{threading.get_ident()}.tmp"
            tmp.write_bytes(content)
            os.replace(tmp, target)
        return sha256

    def read_blob(self, sha256: str) -> bytes:
        return (self.blob_dir / sha256).read_bytes()

    def blob_oid(self, sha256: str) -> str:
        if sha256 not in self._blob_oids:
            self._blob_oids[sha256] = git_blob_oid(self.read_blob(sha256))
        return self._blob_oids[sha256]

    def blob_size(self, sha256: str) -> int:
        return (self.blob_dir / sha256).stat().st_size

    def new_commit(
        self, repo: dict, parent: str | None, files: dict, title: str, message: str, author: str
    ) -> str:
        date = _now()
        payload = json.dumps(
            [parent, sorted(files.items()), title, message, author, date, os.urandom(8).hex()]
        )
        oid = hashlib.sha1(payload.encode()).hexdigest()
        repo["commits"][oid] = {
            "parents": [parent] if parent else [],
            "files": files,
            "title": title,
            "message": message,
            "author": author,
            "date": date,
        }
        return oid

    def resolve(self, repo: dict, revision: str) -> str:
        """Commit id of a branch name or of a full commit id; RevisionNotFound otherwise."""
        if revision in repo["branches"]:
            return repo["branches"][revision]
        if _COMMIT_RE.match(revision) and revision in repo["commits"]:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")


class HubHandler(BaseHTTPRequestHandler):
    """Routes one request; `self.server.store` holds the state, `self.server.tokens` the known tokens."""

    server_version = "SoraLocalHub/1.0"
    protocol_version = "HTTP/1.0"

    # ---- plumbing -------------------------------------------------------------------------------------

    def log_message(self, format: str, *args) -> None:
        pass  # requests.log records every request; stderr stays quiet

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        self._route = "unrouted"  # a handler names its route; "no-route" when none matches
        self._status = 500
        self._detail: dict = {}
        self._logged = False
        split = urlsplit(self.path)
        self.query = parse_qs(split.query)
        # Split before unquoting: branch names and file paths arrive with their own '/' quoted as %2F.
        self.segments = [unquote(part) for part in split.path.strip("/").split("/")]
        try:
            self.user, self.role = self._authenticate()
            self._route_request(method)
        except HubError as err:
            self._send_error(err)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            self._send_error(HubError(400, f"Malformed request: {err}"))
        finally:
            self._log()

    def _log(self) -> None:
        """Log the request once, before its answer goes out: a client that got an answer finds it logged."""
        if not self._logged:
            self._logged = True
            entry = {"method": self.command, "route": self._route, "status": self._status, "path": self.path}
            self.server.log_request_line({**entry, **self._detail})

    def _authenticate(self) -> tuple[str | None, str | None]:
        header = self.headers.get("Authorization")
        if not header:
            return None, None
        token = header.removeprefix("Bearer ").strip()
        if token not in self.server.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.server.tokens[token]

    def _read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json_body(self) -> dict:
        body = self._read_body()
        return json.loads(body) if body else {}

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict | None = None,
        content_type: str = "application/json",
    ) -> None:
        self._status = status
        self._log()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, payload, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers)

    def _send_error(self, err: HubError) -> None:
        headers = {"X-Error-Message": err.message}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._send_json({"error": err.message, **err.extra}, err.status, headers)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{self.headers.get('Host') or f'{host}:{port}'}"

    # ---- access control -------------------------------------------------------------------------------

    def _require_writer(self, namespace: str) -> str:
        if self.user is None:
            raise HubError(401, "Invalid username or password: a write token is required")
        if self.role != "write":
            raise HubError(403, f"Token of {self.user!r} is read-only: it cannot write to {namespace!r}")
        if namespace != self.user:
            raise HubError(403, f"You don't have the rights to write in the namespace {namespace!r}")
        return self.user

    def _repo(self, repo_type: str, repo_id: str, write: bool = False) -> dict:
        validate_repo_id(repo_id)
        repo = self.server.store.repos.get(f"{repo_type}s/{repo_id}")
        can_read = repo is not None and (not repo["private"] or self.user == repo_id.split("/")[0])
        if not can_read:
            # Like the Hub: a private repo one may not read is indistinguishable from a missing one.
            status = 401 if self.user is None else 404
            raise HubError(status, f"Repository {repo_id!r} not found", "RepoNotFound")
        if write:
            self._require_writer(repo_id.split("/")[0])
        return repo

    # ---- routing --------------------------------------------------------------------------------------

    def _route_request(self, method: str) -> None:
        seg = self.segments
        if seg[0] == "api":
            if seg[1:] == ["whoami-v2"] and method == "GET":
                return self._whoami()
            if seg[1:] == ["repos", "create"] and method == "POST":
                return self._create_repo()
            if seg[1:] == ["repos", "delete"] and method == "DELETE":
                return self._delete_repo()
            if seg[1:] == ["validate-yaml"] and method == "POST":
                return self._validate_yaml()
            if len(seg) >= 4 and seg[1] in ("models", "datasets", "spaces"):
                return self._route_repo_api(method, seg[1][:-1], f"{seg[2]}/{seg[3]}", seg[4:])
        else:
            repo_type, rest = "model", seg
            if seg[0] in ("datasets", "spaces"):
                repo_type, rest = seg[0][:-1], seg[1:]
            if len(rest) >= 5 and rest[2] == "resolve" and method in ("GET", "HEAD"):
                return self._resolve(repo_type, f"{rest[0]}/{rest[1]}", rest[3], "/".join(rest[4:]))
        self._route = "no-route"
        raise HubError(404, f"No route for {method} {self.path} in the local Hub server")

    def _route_repo_api(self, method: str, repo_type: str, repo_id: str, rest: list[str]) -> None:
        action = rest[0] if rest else None
        if action is None and method == "GET":
            return self._repo_info(repo_type, repo_id, None)
        if action == "revision" and len(rest) == 2 and method == "GET":
            return self._repo_info(repo_type, repo_id, rest[1])
        if action == "tree" and len(rest) >= 2 and method == "GET":
            return self._tree(repo_type, repo_id, rest[1], "/".join(rest[2:]))
        if action == "refs" and method == "GET":
            return self._refs(repo_type, repo_id)
        if action == "commits" and len(rest) == 2 and method == "GET":
            return self._commits(repo_type, repo_id, rest[1])
        if action == "preupload" and len(rest) == 2 and method == "POST":
            return self._preupload(repo_type, repo_id, rest[1])
        if action == "commit" and len(rest) == 2 and method == "POST":
            return self._commit(repo_type, repo_id, rest[1])
        if action == "branch" and len(rest) == 2 and method in ("POST", "DELETE"):
            return self._branch(method, repo_type, repo_id, rest[1])
        self._route = "no-route"
        raise HubError(404, f"No route for {method} {self.path} in the local Hub server")

    # ---- endpoints ------------------------------------------------------------------------------------

    def _whoami(self) -> None:
        self._route = "GET /api/whoami-v2"
        if self.user is None:
            raise HubError(401, "Invalid username or password: no token given")
        role = self.role
        self._send_json(
            {
                "type": "user",
                "id": hashlib.sha1(self.user.encode()).hexdigest()[:24],
                "name": self.user,
                "fullname": self.user,
                "orgs": [],
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": f"{role} token", "role": role},
                },
            }
        )

    def _create_repo(self) -> None:
        self._route = "POST /api/repos/create"
        body = self._json_body()
        repo_type = body.get("type") or "model"
        if repo_type not in REPO_TYPES:
            raise HubError(400, f"Invalid repo type {repo_type!r}")
        namespace = body.get("organization") or self.user
        if namespace is None:
            raise HubError(401, "Invalid username or password: a write token is required")
        repo_id = f"{namespace}/{body.get('name')}"
        validate_repo_id(repo_id)
        user = self._require_writer(namespace)
        private = body.get("visibility", "private" if body.get("private") else "public") == "private"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.endpoint}/{prefix}{repo_id}"
        store = self.server.store
        with store.lock:
            key = f"{repo_type}s/{repo_id}"
            if key in store.repos:
                # The client reads "url" from this answer when it was called with exist_ok=True.
                raise HubError(409, f"You already created this {repo_type} repo", extra={"url": url})
            repo = {"private": private, "created": _now(), "branches": {}, "commits": {}}
            files = {".gitattributes": store.put_blob(_GITATTRIBUTES)}
            repo["branches"]["main"] = store.new_commit(repo, None, files, "initial commit", "", user)
            store.repos[key] = repo
            store.save()
        self._send_json({"url": url, "name": repo_id, "id": hashlib.sha1(key.encode()).hexdigest()[:24]})

    def _delete_repo(self) -> None:
        self._route = "DELETE /api/repos/delete"
        body = self._json_body()
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization') or self.user}/{body.get('name')}"
        self._repo(repo_type, repo_id, write=True)
        store = self.server.store
        with store.lock:
            del store.repos[f"{repo_type}s/{repo_id}"]
            store.save()
        self._send_json({})

    def _validate_yaml(self) -> None:
        self._route = "POST /api/validate-yaml"
        content = self._json_body().get("content", "")
        errors = []
        if content.startswith("---") and "\n---" not in content[3:]:
            errors.append({"message": "metadata block opened with '---' is never closed"})
        self._send_json({"errors": errors, "warnings": []}, 400 if errors else 200)

    def _repo_info(self, repo_type: str, repo_id: str, revision: str | None) -> None:
        self._route = f"GET /api/{repo_type}s/{{repo}}" + ("/revision/{rev}" if revision else "")
        repo = self._repo(repo_type, repo_id)
        store = self.server.store
        with store.lock:
            sha = store.resolve(repo, revision or "main")
            commit = repo["commits"][sha]
        info = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": sha,
            "private": repo["private"],
            "gated": False,
            "disabled": False,
            "createdAt": repo["created"],
            "lastModified": commit["date"],
            "tags": [],
            "siblings": [{"rfilename": path} for path in sorted(commit["files"])],
        }
        if repo_type == "model":
            info["modelId"] = repo_id
        self._send_json(info)

    def _tree(self, repo_type: str, repo_id: str, revision: str, folder: str) -> None:
        self._route = f"GET /api/{repo_type}s/{{repo}}/tree/{{rev}}"
        repo = self._repo(repo_type, repo_id)
        store = self.server.store
        with store.lock:
            files = repo["commits"][store.resolve(repo, revision)]["files"]
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        if prefix and not any(path.startswith(prefix) for path in files):
            raise HubError(404, f"Folder {folder!r} not found at revision {revision!r}", "EntryNotFound")
        entries: dict[str, dict] = {}
        for path, sha256 in sorted(files.items()):
            if not path.startswith(prefix):
                continue
            relative = path[len(prefix) :].split("/")
            for depth in range(1, len(relative)):
                folder_path = prefix + "/".join(relative[:depth])
                if recursive or depth == 1:
                    oid = hashlib.sha1(folder_path.encode()).hexdigest()
                    entries.setdefault(
                        folder_path, {"type": "directory", "oid": oid, "size": 0, "path": folder_path}
                    )
            if recursive or len(relative) == 1:
                size, oid = store.blob_size(sha256), store.blob_oid(sha256)
                entries[path] = {"type": "file", "oid": oid, "size": size, "path": path}
        self._send_json(list(entries.values()))

    def _refs(self, repo_type: str, repo_id: str) -> None:
        self._route = f"GET /api/{repo_type}s/{{repo}}/refs"
        repo = self._repo(repo_type, repo_id)
        branches = [
            {"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid}
            for name, oid in sorted(repo["branches"].items())
        ]
        self._send_json({"branches": branches, "tags": [], "converts": [], "pullRequests": []})

    def _commits(self, repo_type: str, repo_id: str, revision: str) -> None:
        self._route = f"GET /api/{repo_type}s/{{repo}}/commits/{{rev}}"
        repo = self._repo(repo_type, repo_id)
        store = self.server.store
        history = []
        with store.lock:
            oid = store.resolve(repo, revision)
            while oid:
                commit = repo["commits"][oid]
                history.append(
                    {
                        "id": oid,
                        "title": commit["title"],
                        "message": commit["message"],
                        "authors": [{"user": commit["author"]}],
                        "date": commit["date"],
                    }
                )
                oid = commit["parents"][0] if commit["parents"] else None
        self._send_json(history)

    def _branch(self, method: str, repo_type: str, repo_id: str, branch: str) -> None:
        self._route = f"{method} /api/{repo_type}s/{{repo}}/branch/{{branch}}"
        repo = self._repo(repo_type, repo_id, write=True)
        body = self._json_body() if method == "POST" else {}
        if not _BRANCH_RE.match(branch) or ".." in branch or _COMMIT_RE.match(branch):
            raise HubError(400, f"Invalid branch name {branch!r}")
        store = self.server.store
        with store.lock:
            if method == "DELETE":
                if branch == "main" or branch not in repo["branches"]:
                    raise HubError(404 if branch != "main" else 403, f"Cannot delete branch {branch!r}")
                del repo["branches"][branch]
            else:
                if branch in repo["branches"]:
                    raise HubError(409, f"Reference already exists: refs/heads/{branch}")
                repo["branches"][branch] = store.resolve(repo, body.get("startingPoint") or "main")
            store.save()
        self._send_json({})

    def _preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        self._route = f"POST /api/{repo_type}s/{{repo}}/preupload/{{rev}}"
        repo = self._repo(repo_type, repo_id, write=True)
        body = self._json_body()
        store = self.server.store
        with store.lock:
            head = store.resolve(repo, revision)
            files = repo["commits"][head]["files"]
        answer = []
        for entry in body["files"]:
            path = validate_path(entry["path"])
            oid = store.blob_oid(files[path]) if path in files else None
            # "regular" for every file: contents travel base64 in the commit call, so no LFS or Xet is needed.
            answer.append({"path": path, "uploadMode": "regular", "shouldIgnore": False, "oid": oid})
        self._send_json({"files": answer, "commitOid": head})

    def _commit(self, repo_type: str, repo_id: str, revision: str) -> None:
        self._route = f"POST /api/{repo_type}s/{{repo}}/commit/{{rev}}"
        repo = self._repo(repo_type, repo_id, write=True)
        if self.query.get("create_pr", ["0"])[0] not in ("0", "false"):
            raise HubError(400, "Pull requests are not supported by the local Hub server")
        lines = [json.loads(line) for line in self._read_body().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "Commit payload must start with a 'header' line")
        header = lines[0]["value"]
        # Decode and check every operation before touching the store: a bad line rejects the whole commit.
        additions: dict[str, bytes] = {}
        deletions: list[tuple[str, bool]] = []
        lfs_additions: dict[str, str] = {}
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            path = validate_path(value["path"].rstrip("/") if key == "deletedFolder" else value["path"])
            if key == "file":
                encoding = value.get("encoding", "base64")
                content = value["content"]
                additions[path] = (
                    base64.b64decode(content, validate=True) if encoding == "base64" else content.encode()
                )
            elif key == "lfsFile":
                if not (self.server.store.blob_dir / value["oid"]).exists():
                    raise HubError(400, f"LFS object {value['oid']} for {path!r} was never uploaded")
                lfs_additions[path] = value["oid"]
            elif key in ("deletedFile", "deletedFolder"):
                deletions.append((path, key == "deletedFolder"))
            else:
                raise HubError(400, f"Unknown commit operation {key!r}")
        self._detail = {
            "added": sorted([*additions, *lfs_additions]),
            "deleted": [path for path, _ in deletions],
        }
        store = self.server.store
        with store.lock:
            parent = store.resolve(repo, revision)
            if revision not in repo["branches"]:
                raise HubError(400, f"Cannot commit to {revision!r}: commits go to a branch")
            if header.get("parentCommit") and header["parentCommit"] != parent:
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(repo["commits"][parent]["files"])
            for path, is_folder in deletions:
                if is_folder:
                    doomed = [p for p in files if p.startswith(path + "/")]
                else:
                    doomed = [path] if path in files else []
                if not doomed:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                for doomed_path in doomed:
                    del files[doomed_path]
            for index, (path, content) in enumerate(sorted(additions.items())):
                if self.server.fault == "die-mid-commit" and index == len(additions) // 2:
                    os._exit(70)  # the process dies with half the blobs stored and the refs untouched
                files[path] = store.put_blob(content)
            files.update(lfs_additions)
            oid = store.new_commit(
                repo, parent, files, header.get("summary", ""), header.get("description", ""), self.user
            )
            repo["branches"][revision] = oid
            store.save()
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        self._send_json(
            {
                "success": True,
                "commitOid": oid,
                "commitUrl": f"{self.endpoint}/{prefix}{repo_id}/commit/{oid}",
                "hookOutput": "",
                "pullRequestUrl": None,
            }
        )

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        self._route = f"{self.command} /{{repo}}/resolve/{{rev}}/{{path}}"
        repo = self._repo(repo_type, repo_id)
        validate_path(path, write=False)
        store = self.server.store
        with store.lock:
            sha = store.resolve(repo, revision)
            sha256 = repo["commits"][sha]["files"].get(path)
        if sha256 is None:
            raise HubError(404, f"Entry {path!r} not found at revision {revision!r}", "EntryNotFound")
        content = store.read_blob(sha256)
        headers = {"X-Repo-Commit": sha, "ETag": f'"{store.blob_oid(sha256)}"', "Accept-Ranges": "bytes"}
        status, start, end = 200, 0, len(content)
        range_header = self.headers.get("Range")
        if range_header:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
            if match is None or (not match.group(1) and not match.group(2)):
                raise HubError(416, f"Invalid Range header {range_header!r}")
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)) + 1, len(content)) if match.group(2) else len(content)
            else:  # suffix range: the last N bytes
                start = max(len(content) - int(match.group(2)), 0)
            if start >= len(content) and len(content) > 0:
                headers["Content-Range"] = f"bytes */{len(content)}"
                raise HubError(416, f"Range {range_header!r} starts past the end of {path!r}")
            status = 206
            headers["Content-Range"] = f"bytes {start}-{max(end - 1, start)}/{len(content)}"
        body = content[start:end]
        fault, _, fault_path = (self.server.fault or "").partition(":")
        if self.command == "GET" and fault == "die-mid-download" and fault_path in ("", path):
            self._status = status
            self._log()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            os._exit(70)
        self._send(status, body, headers, content_type="application/octet-stream")


class HubServer(ThreadingHTTPServer):
    """ThreadingHTTPServer carrying the store, the token table, an optional fault and the request log."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: HubStore, tokens: dict, fault: str | None = None):
        super().__init__(address, HubHandler)
        self.store, self.tokens, self.fault = store, tokens, fault
        self._log_lock = threading.Lock()
        self._log = open(store.root / "requests.log", "a", buffering=1)  # noqa: SIM115 - lives with the server

    def log_request_line(self, entry: dict) -> None:
        with self._log_lock:
            self._log.write(json.dumps(entry) + "\n")

    def server_close(self) -> None:
        super().server_close()
        self._log.close()


class LocalHub:
    """Runs this file as a server process. `stop()` then `start()` keeps root and port: a Hub restart."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, fault: str | None = None) -> "LocalHub":
        self.root.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, __file__, "--root", str(self.root), "--port", str(self.port)]
        command += ["--fault", fault] if fault else []
        with open(self.root / "server.log", "a") as log:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        line = self.process.stdout.readline()  # the server prints its address once it listens
        if not line.startswith("listening on "):
            self.process.kill()
            raise RuntimeError(
                f"The local Hub server did not start: {line!r}; see {self.root / 'server.log'}"
            )
        self.port = int(line.rsplit(":", 1)[1])
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        if self.process is not None:
            self.process.stdout.close()

    def wait_for_exit(self, timeout: float = 10.0) -> int:
        """Exit status of the server process (for faults that end it)."""
        return self.process.wait(timeout=timeout)

    def requests(self) -> list[dict]:
        """Every request served so far, oldest first."""
        log = self.root / "requests.log"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@contextlib.contextmanager
def clients_pointed_at(endpoint: str, home: str | os.PathLike):
    """Point the already-imported `huggingface_hub` and `transformers` at `endpoint`, caching under `home`.

    `huggingface_hub` reads `HF_ENDPOINT` and `HF_HOME` once, at import; a process started inside this
    block gets them from the environment instead. No token is visible unless a test passes one.
    """
    import pytest
    from huggingface_hub import constants, hf_api

    home = Path(home)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_ENDPOINT", endpoint)
        patch.setenv("HF_HOME", str(home))
        patch.delenv("HF_TOKEN", raising=False)
        patch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
        for name in ("HF_HUB_OFFLINE", "HF_HUB_CACHE", "TRANSFORMERS_CACHE", "HF_TOKEN_PATH"):
            patch.delenv(name, raising=False)
        patch.setattr(constants, "ENDPOINT", endpoint)
        patch.setattr(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}"
        )
        patch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
        patch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
        patch.setattr(constants, "HF_HUB_OFFLINE", False)
        patch.setattr(hf_api.api, "endpoint", endpoint)  # the module-level HfApi behind create_repo & co
        # transformers keeps its own HfApi, made on first use: drop it here, and restore it on exit.
        patch.setattr(importlib.import_module("transformers.utils.hub"), "_hf_api", None)
        yield


def parse_tokens(specs: list[str]) -> dict:
    """`TOKEN=USER` or `TOKEN=USER:read` → {token: (user, role)}."""
    tokens = {}
    for spec in specs:
        token, _, user_role = spec.partition("=")
        user, _, role = user_role.partition(":")
        if not token or not user or role not in ("", "read", "write"):
            raise ValueError(f"Invalid --token {spec!r}: expected TOKEN=USER or TOKEN=USER:read")
        tokens[token] = (user, role or "write")
    return tokens


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local Hugging Face Hub API server for tests.")
    parser.add_argument(
        "--root", required=True, type=Path, help="Folder holding blobs, repos.json and requests.log."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port.")
    parser.add_argument(
        "--token", action="append", default=[], help="TOKEN=USER[:read]; default: the test tokens."
    )
    parser.add_argument(
        "--fault", default=None, help="die-mid-commit, die-mid-download or die-mid-download:PATH"
    )
    args = parser.parse_args(argv)
    if args.fault and args.fault.partition(":")[0] not in ("die-mid-commit", "die-mid-download"):
        parser.error(
            f"unknown --fault {args.fault!r}: use die-mid-commit, die-mid-download or die-mid-download:PATH"
        )
    server = HubServer(
        (args.host, args.port), HubStore(args.root), parse_tokens(args.token) or DEFAULT_TOKENS, args.fault
    )
    host, port = server.server_address[:2]
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
