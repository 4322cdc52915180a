"""Every route in the OpenAPI document checks scope and collection (issue 11, item 4).

The table below names, for each operation, the scope it needs on collection
`a` and a request that reaches it. The test fails when a route is added
without a row (or a reason to be unscoped), when a key on another collection
gets anything but 403, when a key one scope too low gets anything but 403,
and when the right key is refused.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from api_support import api_client, fake_settings

from zhiku.api.security import KeyStore

JOB = "f" * 32
A = "a"

# (method, path template) -> (needed scope, request: path, params, json)
SCOPED: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("POST", "/search"): ("read", {"url": "/search", "json": {"query": "alpha", "collection": A}}),
    ("POST", "/ask"): ("read", {"url": "/ask", "json": {"question": "alpha?", "collection": A}}),
    ("POST", "/documents"): ("write", {"url": "/documents", "json": {"collection": A, "documents": [{"id": "n", "text": "new"}]}}),
    ("GET", "/documents"): ("read", {"url": "/documents", "params": {"collection": A}}),
    ("GET", "/documents/{doc_id}"): ("read", {"url": "/documents/x", "params": {"collection": A}}),
    ("DELETE", "/documents/{doc_id}"): ("write", {"url": "/documents/x", "params": {"collection": A}}),
    ("GET", "/jobs/{job_id}"): ("read", {"url": f"/jobs/{JOB}"}),
    ("POST", "/collections"): ("admin", {"url": "/collections", "json": {"name": A}}),
    ("GET", "/collections/{name}"): ("read", {"url": f"/collections/{A}"}),
    ("DELETE", "/collections/{name}"): ("admin", {"url": f"/collections/{A}"}),
    ("POST", "/summarize"): ("read", {"url": "/summarize", "json": {"query": "alpha", "collection": A}}),
    ("POST", "/generate"): ("read", {"url": "/generate", "json": {"prompt": "alpha", "grounded": True, "collection": A}}),
    ("POST", "/v1/chat/completions"): (
        "read", {"url": "/v1/chat/completions", "json": {"model": f"zhiku/{A}", "messages": [{"role": "user", "content": "alpha?"}]}},
    ),
    ("GET", "/metrics"): ("admin", {"url": "/metrics"}),
    ("POST", "/admin/reindex"): ("admin", {"url": "/admin/reindex", "json": {"collection": A, "embed_backend": "fake"}}),
}
# Not run with the right key here: they change the shared fixture (their own tests cover them).
CHANGES_FIXTURE = {("POST", "/admin/reindex")}

# Routes that touch no collection, and why that is safe.
UNSCOPED = {
    ("GET", "/healthz"): "liveness: says only that the process is up",
    ("GET", "/readyz"): "readiness: store/keys/embedder status, no data",
    ("GET", "/collections"): "lists only the collections the key can read (tested below)",
    ("GET", "/v1/models"): "lists only the collections the key can read (tested below)",
    ("POST", "/extract"): "works on the given text only, no collection",
    ("POST", "/classify"): "works on the given text only, no collection",
    ("POST", "/rewrite"): "works on the given text only, no collection",
}

LOWER = {"write": "read", "admin": "write"}
# Metrics labels name every collection, so they need an admin key over all of them (`*`).
RIGHT_KEY = {("GET", "/metrics"): "admin"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    data = tmp_path_factory.mktemp("scopes")
    store = KeyStore(data)
    keys = {"admin": store.create(["*"], "admin")[0]}
    for scope in ("read", "write", "admin"):
        keys[f"{scope}_a"] = store.create([A], scope)[0]  # type: ignore[arg-type]
        keys[f"{scope}_b"] = store.create(["b"], scope)[0]  # type: ignore[arg-type]
    jobs = data / "jobs"
    jobs.mkdir()
    now = datetime.now(timezone.utc).isoformat()
    (jobs / f"{JOB}.json").write_text(json.dumps(
        {"id": JOB, "collection": A, "state": "succeeded", "files": ["f.txt"], "created_at": now, "finished_at": now, "pid": 1}
    ))
    with api_client(fake_settings(data), seed=False) as client:
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        for name in (A, "b"):
            r = client.post("/documents", json={"collection": name, "documents": [{"id": "x", "text": "alpha beta"}]},
                            headers=admin)
            assert r.status_code == 201, r.text
        yield client, {k: {"Authorization": f"Bearer {v}"} for k, v in keys.items()}


def test_the_table_covers_every_route(setup):
    client, _ = setup
    operations = {(m.upper(), p) for p, ops in client.app.openapi()["paths"].items() for m in ops}
    assert operations == set(SCOPED) | set(UNSCOPED)


@pytest.mark.parametrize("operation", sorted(SCOPED), ids=lambda o: f"{o[0]} {o[1]}")
def test_a_key_without_the_needed_scope_gets_403(setup, operation):
    client, headers = setup
    needed, request = SCOPED[operation]
    method = operation[0]
    other = client.request(method, headers=headers[f"{needed}_b"], **request)
    assert other.status_code == 403, (other.status_code, other.text)
    if operation in RIGHT_KEY:
        assert client.request(method, headers=headers[f"{needed}_a"], **request).status_code == 403
    if needed in LOWER:
        low = client.request(method, headers=headers[f"{LOWER[needed]}_a"], **request)
        assert low.status_code == 403, (low.status_code, low.text)


@pytest.mark.parametrize(
    "operation", sorted(k for k in SCOPED if k[0] != "DELETE" and k not in CHANGES_FIXTURE), ids=lambda o: f"{o[0]} {o[1]}"
)
def test_the_right_key_gets_through(setup, operation):
    client, headers = setup
    needed, request = SCOPED[operation]
    r = client.request(operation[0], headers=headers[RIGHT_KEY.get(operation, f"{needed}_a")], **request)
    # 409: POST /collections on an existing one; anything but an auth refusal proves the key passed.
    assert r.status_code not in (401, 403), (r.status_code, r.text)


def test_listings_show_only_readable_collections(setup):
    client, headers = setup
    names = [c["name"] for c in client.get("/collections", headers=headers["read_b"]).json()["collections"]]
    assert names == ["b"]
    models = [m["id"] for m in client.get("/v1/models", headers=headers["read_b"]).json()["data"]]
    assert models == ["zhiku/b"]
