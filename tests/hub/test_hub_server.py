"""The local Hub server speaks the Hub's HTTP answers: checked with raw requests (no client-side checks)."""

import base64
import hashlib
import http.client
import json
from urllib.parse import urlsplit

import pytest
from hub_server import OTHER_TOKEN, READ_TOKEN, WRITE_TOKEN


def call(endpoint, method, path, token=None, body=None, headers=None):
    """One raw request; the path is sent exactly as given (http.client does not normalise `..`)."""
    parsed = urlsplit(endpoint)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, response.headers, data


def ndjson(*lines):
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def file_line(path, content):
    return {
        "key": "file",
        "value": {"path": path, "content": base64.b64encode(content).decode(), "encoding": "base64"},
    }


def create(endpoint, name, token=WRITE_TOKEN, private=False):
    status, _, data = call(
        endpoint, "POST", "/api/repos/create", token, {"name": name, "type": "model", "private": private}
    )
    assert status == 200, data
    return json.loads(data)["name"]


def commit(endpoint, repo_id, *lines, token=WRITE_TOKEN, revision="main", parent=None):
    header = {"key": "header", "value": {"summary": "test commit", "description": ""}}
    if parent:
        header["value"]["parentCommit"] = parent
    return call(
        endpoint,
        "POST",
        f"/api/models/{repo_id}/commit/{revision}",
        token,
        ndjson(header, *lines),
        {"Content-Type": "application/x-ndjson"},
    )


def head_sha(endpoint, repo_id, token=WRITE_TOKEN):
    status, _, data = call(endpoint, "GET", f"/api/models/{repo_id}", token)
    assert status == 200, data
    return json.loads(data)["sha"]


def test_whoami_checks_tokens(hub_server):
    status, headers, _ = call(hub_server.endpoint, "GET", "/api/whoami-v2")
    assert status == 401
    status, headers, _ = call(hub_server.endpoint, "GET", "/api/whoami-v2", "hf_not_a_token")
    assert status == 401 and headers["X-Error-Message"] == "Invalid credentials in Authorization header"
    status, _, data = call(hub_server.endpoint, "GET", "/api/whoami-v2", WRITE_TOKEN)
    assert status == 200 and json.loads(data)["name"] == "sora-tester"
    assert json.loads(data)["auth"]["accessToken"]["role"] == "write"


def test_create_repo_needs_a_write_token_for_the_namespace(hub_server):
    endpoint = hub_server.endpoint
    body = {"name": "perm-check", "organization": "sora-tester", "type": "model"}
    assert call(endpoint, "POST", "/api/repos/create", None, body)[0] == 401
    assert call(endpoint, "POST", "/api/repos/create", READ_TOKEN, body)[0] == 403
    assert call(endpoint, "POST", "/api/repos/create", OTHER_TOKEN, body)[0] == 403
    status, _, data = call(endpoint, "POST", "/api/repos/create", WRITE_TOKEN, body)
    assert status == 200 and json.loads(data)["name"] == "sora-tester/perm-check"
    assert json.loads(data)["url"] == f"{endpoint}/sora-tester/perm-check"
    assert call(endpoint, "POST", "/api/repos/create", WRITE_TOKEN, body)[0] == 409


@pytest.mark.parametrize("name", ["bad name", "a--b", "x..y", "-lead", "trail.", "n" * 97, "sl/ash"])
def test_invalid_repo_names_are_rejected(hub_server, name):
    status, _, data = call(hub_server.endpoint, "POST", "/api/repos/create", WRITE_TOKEN, {"name": name})
    assert status == 400, data
    assert b"Invalid repo id" in data


def test_invalid_repo_id_in_urls_is_rejected(hub_server):
    status, _, _ = call(hub_server.endpoint, "GET", "/api/models/sora-tester/a--b")
    assert status == 400
    status, _, _ = call(hub_server.endpoint, "HEAD", "/sora-tester/x..y/resolve/main/config.json")
    assert status == 400


def test_missing_repo_file_and_revision_answer_like_the_hub(hub_server):
    endpoint = hub_server.endpoint
    repo_id = create(endpoint, "missing-things")
    for method, path in [
        ("GET", "/api/models/sora-tester/no-such-repo"),
        ("GET", "/api/models/sora-tester/no-such-repo/tree/main"),
        ("HEAD", "/sora-tester/no-such-repo/resolve/main/config.json"),
    ]:
        status, headers, _ = call(endpoint, method, path, WRITE_TOKEN)
        assert (status, headers["X-Error-Code"]) == (404, "RepoNotFound"), path
    status, headers, _ = call(endpoint, "HEAD", f"/{repo_id}/resolve/main/config.json")
    assert (status, headers["X-Error-Code"]) == (404, "EntryNotFound")
    status, headers, _ = call(endpoint, "GET", f"/{repo_id}/resolve/no-branch/.gitattributes")
    assert (status, headers["X-Error-Code"]) == (404, "RevisionNotFound")
    status, headers, _ = call(endpoint, "GET", f"/api/models/{repo_id}/tree/main/no-folder")
    assert (status, headers["X-Error-Code"]) == (404, "EntryNotFound")


def test_private_repos_are_hidden_without_the_owners_token(hub_server):
    endpoint = hub_server.endpoint
    repo_id = create(endpoint, "secret-model", private=True)
    for token, expected in [(None, 401), (OTHER_TOKEN, 404)]:
        for method, path in [
            ("GET", f"/api/models/{repo_id}"),
            ("GET", f"/{repo_id}/resolve/main/.gitattributes"),
        ]:
            status, headers, _ = call(endpoint, method, path, token)
            assert (status, headers["X-Error-Code"]) == (expected, "RepoNotFound")
    assert call(endpoint, "GET", f"/api/models/{repo_id}", READ_TOKEN)[0] == 200
    assert call(endpoint, "GET", f"/{repo_id}/resolve/main/.gitattributes", WRITE_TOKEN)[0] == 200


def test_writes_need_a_write_token(hub_server):
    endpoint = hub_server.endpoint
    repo_id = create(endpoint, "write-check")
    line = file_line("a.txt", b"a")
    assert commit(endpoint, repo_id, line, token=None)[0] == 401
    assert commit(endpoint, repo_id, line, token="hf_not_a_token")[0] == 401
    assert commit(endpoint, repo_id, line, token=READ_TOKEN)[0] == 403
    assert commit(endpoint, repo_id, line, token=OTHER_TOKEN)[0] == 403
    status, _, data = call(endpoint, "GET", f"/api/models/{repo_id}/tree/main")
    assert [entry["path"] for entry in json.loads(data)] == [".gitattributes"]


@pytest.mark.parametrize(
    "path",
    [
        "/sora-tester/traversal/resolve/main/../../../etc/passwd",
        "/sora-tester/traversal/resolve/main/..%2F..%2Fetc%2Fpasswd",
        "/sora-tester/traversal/resolve/main//etc/passwd",
        "/sora-tester/traversal/resolve/main/%2Fetc%2Fpasswd",
    ],
)
def test_download_path_traversal_is_rejected(hub_server, path):
    call(
        hub_server.endpoint, "POST", "/api/repos/create", WRITE_TOKEN, {"name": "traversal"}
    )  # 409 after the first
    status, _, data = call(hub_server.endpoint, "GET", path)
    assert status == 400, data
    assert b"Invalid path in repo" in data


@pytest.mark.parametrize("bad_path", ["../escape.txt", "/etc/passwd", "a/../../b", "a//b", ".git/config"])
def test_commit_with_a_bad_path_lands_nothing(hub_server, bad_path):
    endpoint = hub_server.endpoint
    repo_id = f"sora-tester/bad-path-{hashlib.sha1(bad_path.encode()).hexdigest()[:8]}"
    create(endpoint, repo_id.split("/")[1])
    before = head_sha(endpoint, repo_id)
    status, _, data = commit(endpoint, repo_id, file_line("good.txt", b"fine"), file_line(bad_path, b"evil"))
    assert status == 400, data
    assert head_sha(endpoint, repo_id) == before
    assert call(endpoint, "HEAD", f"/{repo_id}/resolve/main/good.txt")[0] == 404


def test_commit_resolve_range_and_revisions(hub_server):
    endpoint = hub_server.endpoint
    repo_id = create(endpoint, "range-and-revs")
    content = bytes(range(256)) * 4
    status, _, data = commit(endpoint, repo_id, file_line("w/data.bin", content), file_line("a.txt", b"v1"))
    assert status == 200, data
    first = json.loads(data)["commitOid"]
    assert first == head_sha(endpoint, repo_id)

    status, headers, body = call(endpoint, "HEAD", f"/{repo_id}/resolve/main/w/data.bin")
    assert status == 200 and body == b""
    assert headers["X-Repo-Commit"] == first
    assert headers["Content-Length"] == str(len(content))
    git_oid = hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
    assert headers["ETag"] == f'"{git_oid}"'

    status, headers, body = call(
        endpoint, "GET", f"/{repo_id}/resolve/main/w/data.bin", headers={"Range": "bytes=10-19"}
    )
    assert (status, body, headers["Content-Range"]) == (206, content[10:20], f"bytes 10-19/{len(content)}")
    status, _, body = call(
        endpoint, "GET", f"/{repo_id}/resolve/main/w/data.bin", headers={"Range": "bytes=1000-"}
    )
    assert (status, body) == (206, content[1000:])
    status, _, body = call(
        endpoint, "GET", f"/{repo_id}/resolve/main/w/data.bin", headers={"Range": "bytes=-5"}
    )
    assert (status, body) == (206, content[-5:])
    assert call(endpoint, "GET", f"/{repo_id}/resolve/main/a.txt", headers={"Range": "bytes=9-"})[0] == 416

    # A branch from main, a commit on it, and main left alone; old commits stay readable by id.
    assert call(endpoint, "POST", f"/api/models/{repo_id}/branch/dev", WRITE_TOKEN, {})[0] == 200
    assert call(endpoint, "POST", f"/api/models/{repo_id}/branch/dev", WRITE_TOKEN, {})[0] == 409
    status, _, data = commit(endpoint, repo_id, file_line("a.txt", b"v2"), revision="dev")
    assert status == 200, data
    assert call(endpoint, "GET", f"/{repo_id}/resolve/dev/a.txt")[2] == b"v2"
    assert call(endpoint, "GET", f"/{repo_id}/resolve/main/a.txt")[2] == b"v1"
    assert call(endpoint, "GET", f"/{repo_id}/resolve/{first}/a.txt")[2] == b"v1"

    # The tree lists folders and files; recursive lists everything.
    _, _, data = call(endpoint, "GET", f"/api/models/{repo_id}/tree/main")
    assert {(e["type"], e["path"]) for e in json.loads(data)} == {
        ("file", ".gitattributes"),
        ("file", "a.txt"),
        ("directory", "w"),
    }
    _, _, data = call(endpoint, "GET", f"/api/models/{repo_id}/tree/main?recursive=true")
    assert {e["path"] for e in json.loads(data) if e["type"] == "file"} == {
        ".gitattributes",
        "a.txt",
        "w/data.bin",
    }

    # A commit based on a stale parent is refused.
    status, _, _ = commit(endpoint, repo_id, file_line("a.txt", b"v3"), parent=first, revision="dev")
    assert status == 412
    # Deleting a file that is not there is refused, with the Hub's error code.
    status, headers, _ = commit(endpoint, repo_id, {"key": "deletedFile", "value": {"path": "nope.txt"}})
    assert (status, headers["X-Error-Code"]) == (404, "EntryNotFound")


def test_state_survives_a_restart(fresh_hub_server):
    endpoint = fresh_hub_server.endpoint
    repo_id = create(endpoint, "persisted")
    assert commit(endpoint, repo_id, file_line("kept.txt", b"still here"))[0] == 200
    fresh_hub_server.stop()
    fresh_hub_server.start()
    assert fresh_hub_server.endpoint == endpoint
    assert call(endpoint, "GET", f"/{repo_id}/resolve/main/kept.txt")[2] == b"still here"
    routes = {entry["route"] for entry in fresh_hub_server.requests()}
    assert "POST /api/models/{repo}/commit/{rev}" in routes
