"""Regression tests for the holes of issue 12 (auth mode, SSRF, hosts, uploads, metrics, timeouts, leaks).

Each test here failed on commit 83e7686 and passes now; they are written to
join a `make reliability` suite as they are (fakes, temp dirs, loopback only).
"""

from __future__ import annotations

import http.server
import io
import json
import threading
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from api_support import api_client, fake_settings, running_server

from zhiku.api import create_app
from zhiku.api.security import KeyStore
from zhiku.engine.llm.fake import ScriptedGenerator


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- 1. the auth mode is fixed at start ------------------------------------------------------


@pytest.fixture
def keyed_two(tmp_path):
    store = KeyStore(tmp_path)
    admin, admin_rec = store.create(["*"], "admin")
    reader, reader_rec = store.create(["c1"], "read")
    with api_client(fake_settings(tmp_path), seed=False) as client:
        for name in ("c1", "c2"):
            r = client.post("/documents", json={"collection": name, "documents": [{"id": "x", "text": f"secret of {name}"}]},
                            headers=_bearer(admin))
            assert r.status_code == 201, r.text
        yield client, store, {"admin": (admin, admin_rec), "reader": (reader, reader_rec)}


def _probes(client, headers=None):  # type: ignore[no-untyped-def]
    return [
        client.post("/collections", json={"name": "new"}, headers=headers).status_code,
        client.get("/documents/x", params={"collection": "c2"}, headers=headers).status_code,
        client.delete("/collections/c1", headers=headers).status_code,
    ]


def test_revoking_every_key_does_not_open_the_server(keyed_two):
    client, store, keys = keyed_two
    for token, record in keys.values():
        store.revoke(record.id)
    assert _probes(client) == [401, 401, 401]
    for token, _ in keys.values():
        assert _probes(client, _bearer(token)) == [401, 401, 401]


def test_removing_the_key_file_does_not_open_the_server(keyed_two, tmp_path):
    client, store, keys = keyed_two
    (tmp_path / "keys.json").unlink()
    assert _probes(client) == [401, 401, 401]
    assert _probes(client, _bearer(keys["admin"][0])) == [401, 401, 401]


def test_a_key_file_of_revoked_keys_starts_keyed(tmp_path):
    store = KeyStore(tmp_path)
    _, record = store.create(["*"], "admin")
    store.revoke(record.id)
    with api_client(fake_settings(tmp_path), seed=False) as client:
        assert _probes(client) == [401, 401, 401]


def test_an_open_server_refuses_network_peers_that_are_not_loopback(tmp_path):
    from fastapi.testclient import TestClient

    with TestClient(create_app(fake_settings(tmp_path)), client=("192.0.2.7", 40000),
                    base_url="http://127.0.0.1:8000") as client:
        r = client.post("/collections", json={"name": "c"})
        assert r.status_code == 403, r.text
    with TestClient(create_app(fake_settings(tmp_path)), client=("127.0.0.1", 40000),
                    base_url="http://127.0.0.1:8000") as client:
        assert client.post("/collections", json={"name": "c"}).status_code == 201


# -- 2. /extract never fetches a $ref ---------------------------------------------------------


@pytest.fixture
def spy_server():
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hits.append(self.path)
            body = b'{"type": "object"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()


@pytest.mark.parametrize("where", ["remote", "nested_remote", "file"])
def test_extract_never_resolves_refs_outside_the_schema(tmp_path, spy_server, where):
    base, hits = spy_server
    schema = {
        "remote": {"$ref": f"{base}/s.json"},
        "nested_remote": {"type": "object", "properties": {"a": {"$ref": f"{base}/a.json"}}},
        "file": {"$ref": f"file://{tmp_path}/s.json"},
    }[where]
    (tmp_path / "s.json").write_text('{"type": "object"}')
    with api_client(fake_settings(tmp_path), seed=False, generator=ScriptedGenerator(['{"a": 1}'] * 3)) as client:
        r = client.post("/extract", json={"text": "a is 1", "json_schema": schema})
    assert r.status_code == 422, r.text
    assert "$ref" in r.json()["error"]["message"]
    assert hits == []


def test_extract_still_resolves_local_refs(tmp_path):
    schema = {"type": "object", "properties": {"a": {"$ref": "#/$defs/n"}}, "$defs": {"n": {"type": "integer"}}}
    with api_client(fake_settings(tmp_path), seed=False, generator=ScriptedGenerator(['{"a": 1}'])) as client:
        r = client.post("/extract", json={"text": "a is 1", "json_schema": schema})
    assert r.status_code == 200 and r.json()["data"] == {"a": 1}


# -- 3. trusted hosts and same-origin writes --------------------------------------------------


def test_foreign_origin_and_host_are_refused_on_a_real_server(tmp_path):
    app = create_app(fake_settings(tmp_path, server={"allowed_hosts": ["zhiku.internal"]}))
    files = {"files": ("a.txt", b"poison", "text/plain")}
    with running_server(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        port = base.rsplit(":", 1)[1]
        evil = http.post("/documents", files=files, data={"collection": "c"}, headers={"Origin": "http://evil.example"})
        assert evil.status_code == 403 and evil.json()["error"]["code"] == "forbidden"
        rebound = http.get("/collections", headers={"Host": f"evil.example:{port}"})
        assert rebound.status_code == 400
        assert http.post("/collections", json={"name": "c"}, headers={"Origin": "null"}).status_code == 403
        # Same origin (the web console), a configured host, and clients without Origin pass.
        same = http.post("/collections", json={"name": "c"}, headers={"Origin": base})
        assert same.status_code == 201, same.text
        assert http.get("/collections", headers={"Host": "zhiku.internal"}).status_code == 200
        assert http.get("/collections", headers={"Host": f"localhost:{port}"}).status_code == 200
        assert http.post("/collections", json={"name": "d"}).status_code == 201
        assert http.get("/collections", headers={"Origin": "http://evil.example"}).status_code == 200  # reads: CORS


# -- 4. upload folders and the job table stay bounded ----------------------------------------


def _uploads(data_dir: Path) -> list[str]:
    folder = data_dir / "uploads"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_refused_upload_saves_nothing(tmp_path, monkeypatch):
    from zhiku.api.services import Services

    real = Services.kb

    def kb(self, collection, create=False):  # type: ignore[no-untyped-def]
        if collection == "bad":
            from zhiku.engine.errors import InvalidRequest

            raise InvalidRequest("this collection cannot be written")
        return real(self, collection, create=create)

    monkeypatch.setattr(Services, "kb", kb)
    big = b"word " * 300_000  # 1.4 MB: a background job
    with api_client(fake_settings(tmp_path), seed=False) as client:
        r = client.post("/documents", files=[("files", ("big.txt", big, "text/plain"))], data={"collection": "bad"})
        assert r.status_code == 422
        assert _uploads(tmp_path) == []


def test_a_file_over_the_size_limit_is_refused_before_saving(tmp_path, monkeypatch):
    import zhiku.ingest.pipeline as pipeline

    saved = []
    real = pipeline.ingest_paths

    def spy(kb, paths, options):  # type: ignore[no-untyped-def]
        saved.extend(sorted(p.name for p in Path(paths[0]).iterdir()))
        return real(kb, paths, options)

    monkeypatch.setattr(pipeline, "ingest_paths", spy)
    import zhiku.api.routers.documents as documents

    monkeypatch.setattr(documents, "_file_limit", lambda: 1024)
    files = [("files", ("ok.txt", b"small and fine", "text/plain")), ("files", ("big.txt", b"x" * 5000, "text/plain"))]
    with api_client(fake_settings(tmp_path), seed=False) as client:
        r = client.post("/documents", files=files, data={"collection": "c"})
    assert r.status_code == 201, r.text
    assert saved == ["ok.txt"]
    assert [(e["file"], e["code"]) for e in r.json()["errors"]] == [("big.txt", "too_large")]


def test_orphaned_uploads_and_old_jobs_are_swept_at_start(tmp_path):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    old = datetime.now(timezone.utc) - timedelta(days=30)
    record = {"id": "a" * 32, "collection": "c", "state": "succeeded", "files": ["f.txt"],
              "created_at": old.isoformat(), "finished_at": old.isoformat(), "pid": 999_999}
    (jobs / f"{'a' * 32}.json").write_text(json.dumps(record))
    fresh = {**record, "id": "b" * 32, "created_at": datetime.now(timezone.utc).isoformat(),
             "finished_at": datetime.now(timezone.utc).isoformat()}
    (jobs / f"{'b' * 32}.json").write_text(json.dumps(fresh))
    for name in ("c" * 32, "999999-" + "d" * 32):  # a job folder left by kill -9, and one of a dead pid
        (tmp_path / "uploads" / name).mkdir(parents=True)
        (tmp_path / "uploads" / name / "f.txt").write_text("left over")
    with api_client(fake_settings(tmp_path, server={"job_ttl_s": 86400}), seed=False):
        assert _uploads(tmp_path) == []
        assert sorted(p.name for p in jobs.glob("*.json")) == [f"{'b' * 32}.json"]


# -- 5. metrics labels stay bounded -----------------------------------------------------------


def test_made_up_methods_do_not_grow_the_metrics(tmp_path):
    with api_client(fake_settings(tmp_path), seed=False) as client:
        for method in ("FOO", "BAR", "BAZQUX"):
            client.request(method, "/search")
        text = client.get("/metrics").text
    assert "FOO" not in text and "BAZQUX" not in text
    assert 'method="other"' in text


# -- 6. timeouts bound work -------------------------------------------------------------------


def test_timed_out_threads_still_count_against_the_cap(tmp_path, monkeypatch):
    from zhiku.engine.kb import KnowledgeBase

    release = threading.Event()
    real = KnowledgeBase.search_debug

    def slow(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        release.wait(20)
        return real(self, *args, **kwargs)

    settings = fake_settings(tmp_path, server={"request_timeout_s": 0.2, "max_running_work": 2})
    with api_client(settings) as client:
        monkeypatch.setattr(KnowledgeBase, "search_debug", slow)
        body = {"query": "Paris", "collection": "docs"}
        assert [client.post("/search", json=body).status_code for _ in range(2)] == [503, 503]
        busy = client.post("/search", json=body)
        assert busy.status_code == 503 and busy.json()["error"]["code"] == "busy", busy.text
        release.set()
        deadline = time.monotonic() + 10
        while client.app.state.services.work.running and time.monotonic() < deadline:
            time.sleep(0.02)
        monkeypatch.setattr(KnowledgeBase, "search_debug", real)
        assert client.post("/search", json=body).status_code == 200


def test_a_timed_out_generation_keeps_its_slot_until_it_stops(tmp_path):
    release = threading.Event()

    def stuck(messages):  # type: ignore[no-untyped-def]
        release.wait(20)  # one long piece: a prefill that cannot be interrupted
        return "late"

    settings = fake_settings(tmp_path, server={"request_timeout_s": 0.3, "llm_queue": 1})
    with api_client(settings, seed=False, generator=ScriptedGenerator(stuck)) as client:
        assert client.post("/generate", json={"prompt": "hello"}).status_code == 503
        gate = client.app.state.services.gate
        assert gate.depth == 1  # the model is still running: its slot is still taken
        assert client.post("/generate", json={"prompt": "again"}).status_code == 429
        release.set()
        deadline = time.monotonic() + 10
        while gate.depth and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gate.depth == 0


def test_a_timed_out_generation_is_cancelled(tmp_path):
    from zhiku.engine.llm.base import GenOptions, Generator

    produced: list[int] = []

    class Slow(Generator):
        def _stream(self, messages, options: GenOptions):  # type: ignore[no-untyped-def]
            for i in range(100):
                time.sleep(0.05)
                produced.append(i)
                yield f"w{i} "

    settings = fake_settings(tmp_path, server={"request_timeout_s": 0.3})
    with api_client(settings, seed=False, generator=Slow()) as client:
        assert client.post("/generate", json={"prompt": "hello"}).status_code == 503
        time.sleep(1.0)
        assert len(produced) < 15, f"generation went on after the timeout: {len(produced)} pieces"
        assert client.app.state.services.gate.depth == 0


def test_a_stream_whose_client_leaves_stops_generating(tmp_path):
    from zhiku.engine.llm.base import GenOptions, Generator

    produced: list[int] = []

    class Slow(Generator):
        def _stream(self, messages, options: GenOptions):  # type: ignore[no-untyped-def]
            for i in range(200):
                time.sleep(0.02)
                produced.append(i)
                yield f"w{i} "

    app = create_app(fake_settings(tmp_path, server={"request_timeout_s": 30}), generator=Slow())
    with running_server(app) as base:
        with httpx.Client(base_url=base, timeout=30) as http:
            http.post("/documents", json={"collection": "c", "documents": [{"id": "a", "text": "alpha beta gamma"}]})
            with http.stream("POST", "/ask", json={"question": "alpha beta?", "collection": "c", "stream": True}) as r:
                assert r.status_code == 200
                next(r.iter_bytes())
            # the client hung up after its first bytes
        time.sleep(1.5)
        seen = len(produced)
        time.sleep(0.5)
        assert len(produced) == seen, "generation went on after the client left"
        assert seen < 150
        assert _settles(lambda: app.state.services.gate.depth == 0)


def test_a_plain_request_whose_client_leaves_stops_generating(tmp_path):
    from zhiku.engine.llm.base import GenOptions, Generator

    produced: list[int] = []

    class Slow(Generator):
        def _stream(self, messages, options: GenOptions):  # type: ignore[no-untyped-def]
            for i in range(200):
                time.sleep(0.02)
                produced.append(i)
                yield f"w{i} "

    app = create_app(fake_settings(tmp_path, server={"request_timeout_s": 30}), generator=Slow())
    with running_server(app) as base:
        with httpx.Client(base_url=base, timeout=0.5) as http, pytest.raises(httpx.ReadTimeout):
            http.post("/generate", json={"prompt": "hello"})
        time.sleep(1.5)
        seen = len(produced)
        time.sleep(0.5)
        assert len(produced) == seen, "generation went on after the client left"
        assert seen < 150
        assert _settles(lambda: app.state.services.gate.depth == 0)


def _settles(check, limit_s: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit_s
    while not check() and time.monotonic() < deadline:
        time.sleep(0.02)
    return check()


def test_inline_uploads_parse_in_the_pool(tmp_path, monkeypatch):
    import zhiku.ingest.pipeline as pipeline

    seen = []
    real = pipeline.ingest_paths

    def spy(kb, paths, options):  # type: ignore[no-untyped-def]
        seen.append((options.workers, options.pool))
        return real(kb, paths, options)

    monkeypatch.setattr(pipeline, "ingest_paths", spy)
    with api_client(fake_settings(tmp_path), seed=False) as client:
        pids = []
        for name in ("a.txt", "b.txt"):
            r = client.post("/documents", files=[("files", (name, b"small inline text " + name.encode(), "text/plain"))],
                            data={"collection": "c"})
            assert r.status_code == 201, r.text
            pool = client.app.state.services.parse_pool
            pids.append([w.process.pid for w in pool._workers])
    # Both parsed in the server's one long-lived worker, not in the request thread.
    assert [(w, p is pool) for w, p in seen] == [(1, True), (1, True)]
    assert len(pids[0]) == 1 and pids[0] == pids[1]


def test_the_zip_ratio_check_applies_to_small_declared_sizes():
    from zhiku.ingest.detect import ZipLimits, office_kind
    from zhiku.ingest.errors import FileRejected

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", b"\0" * (8 * 1024 * 1024))  # 8 MiB of zeros: ratio ~1000:1
    with pytest.raises(FileRejected, match="zip bomb"):
        office_kind("a.docx", buffer.getvalue(), ZipLimits())


# -- 9. no internal paths; one rule for creating collections ----------------------------------


def test_error_messages_do_not_show_server_paths():
    from zhiku.api.errors import error_response
    from zhiku.engine.errors import ModelUnavailable, StoreLocked

    for exc in (StoreLocked("collection is locked by /srv/zhiku-data/collections/c/.lock", path="/srv/zhiku-data/x"),
                ModelUnavailable("model file /opt/models/qwen.gguf is missing")):
        body = error_response(exc).body.decode()
        assert "/srv/" not in body and "/opt/" not in body, body


def test_uploads_record_their_name_not_the_server_folder(tmp_path):
    with api_client(fake_settings(tmp_path), seed=False) as client:
        r = client.post("/documents", files=[("files", ("notes.txt", b"Paris is in France.", "text/plain"))],
                        data={"collection": "c"})
        assert r.status_code == 201, r.text
        doc = client.get(f"/documents/{r.json()['doc_ids'][0]}", params={"collection": "c"}).json()
    assert doc["metadata"]["path"] == "notes.txt"
    assert str(tmp_path) not in json.dumps(doc)


def test_creating_a_collection_needs_admin_on_every_route(tmp_path):
    store = KeyStore(tmp_path)
    admin, _ = store.create(["*"], "admin")
    writer, _ = store.create(["*"], "write")
    doc = {"collection": "fresh", "documents": [{"id": "a", "text": "alpha"}]}
    with api_client(fake_settings(tmp_path), seed=False) as client:
        assert client.post("/collections", json={"name": "fresh"}, headers=_bearer(writer)).status_code == 403
        r = client.post("/documents", json=doc, headers=_bearer(writer))
        assert r.status_code == 404, r.text
        up = client.post("/documents", files=[("files", ("a.txt", b"alpha", "text/plain"))],
                         data={"collection": "fresh"}, headers=_bearer(writer))
        assert up.status_code == 404
        assert "fresh" not in [c["name"] for c in client.get("/collections", headers=_bearer(admin)).json()["collections"]]
        assert client.post("/documents", json=doc, headers=_bearer(admin)).status_code == 201
        assert client.post("/documents", json=doc, headers=_bearer(writer)).status_code == 201  # it exists now


def test_a_broken_parse_pool_is_a_503_to_retry_not_a_500(tmp_path, monkeypatch):
    import zhiku.ingest.pipeline as pipeline
    from zhiku.ingest.pool import PoolBroken

    def broken(kb, paths, options):  # type: ignore[no-untyped-def]
        raise PoolBroken("parse workers cannot start (exit code 1, 3 tries); no file was parsed", exit_code=1)

    monkeypatch.setattr(pipeline, "ingest_paths", broken)
    with api_client(fake_settings(tmp_path), seed=False) as client:
        r = client.post("/documents", files=[("files", ("a.txt", b"some text", "text/plain"))], data={"collection": "c"})
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "pool_broken"
    assert "cannot start" in r.json()["error"]["message"]
    assert int(r.headers["Retry-After"]) >= 1
