"""API keys: hashing, scopes, per-collection access, the loopback rule, the keys CLI."""

from __future__ import annotations

import json

import pytest
from api_support import api_client, fake_settings
from typer.testing import CliRunner

from zhiku.api.security import KeyStore, Principal, check_binding, hash_token, is_loopback
from zhiku.engine.errors import ConfigError, NotFound


def test_keys_are_stored_hashed_and_verified(tmp_path):
    store = KeyStore(tmp_path)
    assert not store.enabled
    token, record = store.create(["docs"], "read", name="ci")
    assert token.startswith("zk_") and len(token) > 40
    raw = (tmp_path / "keys.json").read_text()
    assert token not in raw and hash_token(token) in raw
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    assert store.enabled
    assert store.verify(token) == record
    assert store.verify(token + "x") is None
    assert store.verify("") is None
    store.revoke(record.id)
    assert store.verify(token) is None and not store.enabled
    with pytest.raises(NotFound):
        store.revoke("nope")


def test_a_second_store_sees_new_keys(tmp_path):
    reader, writer = KeyStore(tmp_path), KeyStore(tmp_path)
    assert not reader.enabled
    token, _ = writer.create(["*"], "admin")
    assert reader.verify(token) is not None


@pytest.mark.parametrize(
    ("scope", "collections", "target", "needed", "ok"),
    [
        ("read", ["docs"], "docs", "read", True),
        ("read", ["docs"], "docs", "write", False),
        ("read", ["docs"], "other", "read", False),
        ("write", ["docs"], "docs", "read", True),
        ("write", ["docs"], "docs", "admin", False),
        ("admin", ["*"], "anything", "admin", True),
    ],
)
def test_scope_table(scope, collections, target, needed, ok):
    assert Principal("k", scope, tuple(collections)).can(target, needed) is ok


@pytest.mark.parametrize(
    ("host", "loop"), [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
                       ("0.0.0.0", False), ("192.168.1.4", False), ("example.org", False)]
)
def test_loopback(host, loop):
    assert is_loopback(host) is loop


def test_binding_without_keys_is_loopback_only():
    assert "loopback" in check_binding("127.0.0.1", has_keys=False)
    with pytest.raises(ConfigError, match="refusing to bind"):
        check_binding("0.0.0.0", has_keys=False)
    assert check_binding("0.0.0.0", has_keys=True) is None


@pytest.fixture
def keyed(tmp_path):
    store = KeyStore(tmp_path)
    tokens = {
        "read_docs": store.create(["docs"], "read")[0],
        "write_docs": store.create(["docs"], "write")[0],
        "read_other": store.create(["other"], "read")[0],
        "admin": store.create(["*"], "admin")[0],
    }
    with api_client(fake_settings(tmp_path), seed=False) as client:
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        r = client.post("/documents", json={"collection": "docs", "documents": [{"id": "a", "text": "alpha beta"}]}, headers=admin)
        assert r.status_code == 201, r.text
        client.post("/collections", json={"name": "other"}, headers=admin)
        yield client, {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}


def test_requests_need_a_valid_key(keyed):
    client, h = keyed
    r = client.post("/search", json={"query": "alpha", "collection": "docs"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    bad = client.post("/search", json={"query": "alpha", "collection": "docs"}, headers={"Authorization": "Bearer zk_wrong"})
    assert bad.status_code == 401
    assert client.get("/healthz").status_code == 200  # liveness stays open


def test_each_key_sees_only_its_collections(keyed):
    client, h = keyed
    assert client.post("/search", json={"query": "alpha", "collection": "docs"}, headers=h["read_docs"]).status_code == 200
    r = client.post("/search", json={"query": "alpha", "collection": "docs"}, headers=h["read_other"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    names = [c["name"] for c in client.get("/collections", headers=h["read_other"]).json()["collections"]]
    assert names == ["other"]
    models = [m["id"] for m in client.get("/v1/models", headers=h["read_docs"]).json()["data"]]
    assert models == ["zhiku/docs"]


def test_scopes_gate_writes_and_admin(keyed):
    client, h = keyed
    doc = {"collection": "docs", "documents": [{"id": "b", "text": "gamma"}]}
    assert client.post("/documents", json=doc, headers=h["read_docs"]).status_code == 403
    assert client.post("/documents", json=doc, headers=h["write_docs"]).status_code == 201
    assert client.delete("/documents/b", params={"collection": "docs"}, headers=h["read_docs"]).status_code == 403
    assert client.delete("/documents/b", params={"collection": "docs"}, headers=h["write_docs"]).status_code == 200
    assert client.post("/collections", json={"name": "new"}, headers=h["write_docs"]).status_code == 403
    assert client.delete("/collections/docs", headers=h["write_docs"]).status_code == 403
    assert client.get("/metrics", headers=h["read_docs"]).status_code == 403
    assert client.get("/metrics", headers=h["admin"]).status_code == 200


def test_x_api_key_header_works(keyed):
    client, h = keyed
    token = h["read_docs"]["Authorization"].split()[1]
    r = client.post("/search", json={"query": "alpha", "collection": "docs"}, headers={"X-API-Key": token})
    assert r.status_code == 200


def test_revoked_key_stops_working_on_a_running_server(keyed, tmp_path):
    client, h = keyed
    store = KeyStore(tmp_path)
    token = h["read_docs"]["Authorization"].split()[1]
    store.revoke(store.verify(token).id)
    assert client.post("/search", json={"query": "alpha", "collection": "docs"}, headers=h["read_docs"]).status_code == 401


def test_keys_cli(tmp_path):
    from zhiku.cli.keys import app

    runner = CliRunner()
    r = runner.invoke(app, ["create", "--collection", "docs", "--scope", "write", "--name", "bot", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    token = r.stdout.strip().splitlines()[-1]
    assert token.startswith("zk_")
    listed = runner.invoke(app, ["list", "--json", "--data-dir", str(tmp_path)])
    keys = json.loads(listed.stdout)
    assert keys[0]["scope"] == "write" and keys[0]["collections"] == ["docs"] and "hash" not in keys[0]
    assert token not in listed.stdout
    assert runner.invoke(app, ["revoke", keys[0]["id"], "--data-dir", str(tmp_path)]).exit_code == 0
    assert KeyStore(tmp_path).verify(token) is None
    assert runner.invoke(app, ["create", "--collection", "docs", "--scope", "root", "--data-dir", str(tmp_path)]).exit_code == 2
    assert runner.invoke(app, ["revoke", "nope", "--data-dir", str(tmp_path)]).exit_code == 1


def test_serve_refuses_public_bind_without_keys(tmp_path, monkeypatch):
    import typer

    from zhiku.cli.serve import serve

    app = typer.Typer()
    app.command()(serve)
    r = CliRunner().invoke(app, ["--host", "0.0.0.0", "--port", "9", "--data-dir", str(tmp_path)])
    assert r.exit_code == 2
    assert "refusing to bind" in r.output


def test_serve_refuses_several_workers_on_the_edge_store(tmp_path, monkeypatch):
    import typer

    from zhiku.cli.serve import serve

    monkeypatch.setenv("ZHIKU_STORE__BACKEND", "edge")
    app = typer.Typer()
    app.command()(serve)
    r = CliRunner().invoke(app, ["--workers", "2", "--data-dir", str(tmp_path)])
    assert r.exit_code == 2
    assert "one process" in r.output


def test_app_refuses_to_start_on_a_public_host_without_keys(tmp_path):
    from fastapi.testclient import TestClient

    from zhiku.api import create_app

    app = create_app(fake_settings(tmp_path, server={"host": "0.0.0.0"}))
    with pytest.raises(ConfigError, match="refusing to bind"):
        with TestClient(app):
            pass
    KeyStore(tmp_path).create(["*"], "read")
    with TestClient(create_app(fake_settings(tmp_path, server={"host": "0.0.0.0"}))) as client:
        assert client.get("/healthz").status_code == 200
