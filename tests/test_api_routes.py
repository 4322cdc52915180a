"""Routes over the real engine with the fake embedder/generator and an in-memory store."""

from __future__ import annotations

import json
import threading
import time

import pytest
from api_support import DOCS, api_client, fake_settings, sse_events
from fastapi.testclient import TestClient

from zhiku.api import create_app
from zhiku.engine.embedders.fake import FakeEmbedder
from zhiku.engine.errors import ModelUnavailable
from zhiku.engine.engine import Engine


@pytest.fixture
def client(tmp_path):
    with api_client(fake_settings(tmp_path)) as c:
        yield c


def test_search_returns_hits_and_debug_timings(client):
    r = client.post("/search", json={"query": "Eiffel Tower Paris", "collection": "docs", "debug": True})
    assert r.status_code == 200
    body = r.json()
    assert body["hits"][0]["doc_id"] == "eiffel"
    assert body["hits"][0]["title"] == "Eiffel Tower"
    assert {"embed_ms", "dense_ms", "bm25_ms", "fusion_ms", "total_ms"} <= set(body["timings_ms"])
    plain = client.post("/search", json={"query": "Eiffel Tower Paris", "collection": "docs"}).json()
    assert plain["timings_ms"] is None


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_search_modes_and_filters(client, mode):
    r = client.post(
        "/search",
        json={"query": "Great Wall China", "collection": "docs", "mode": mode, "filters": {"year": {"lt": 1000}}},
    )
    assert r.status_code == 200, r.text
    assert [h["doc_id"] for h in r.json()["hits"]] == ["great-wall"]


def test_search_chinese(client):
    r = client.post("/search", json={"query": "故宫在哪里", "collection": "docs", "mode": "bm25"})
    assert r.json()["hits"][0]["doc_id"] == "gugong"


def test_bad_filter_is_422_in_error_shape(client):
    r = client.post("/search", json={"query": "x", "collection": "docs", "filters": {"year": {"near": 3}}})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_request"
    assert set(r.json()["error"]) == {"code", "message", "details"}


def test_unknown_collection_is_404(client):
    r = client.post("/search", json={"query": "x", "collection": "missing"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_validation_errors_share_the_shape(client):
    r = client.post("/search", json={"query": "", "collection": "docs", "unknown": 1})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_request" and err["details"]["errors"]
    r = client.get("/no-such-route")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.put("/search", json={})
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_ask_answers_with_citations(client):
    r = client.post("/ask", json={"question": "Where is the Eiffel Tower?", "collection": "docs"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert not body["refused"] and body["mode"] == "answer" and body["refusal_reason"] is None
    assert "Paris" in body["answer"]
    assert body["citations"][0]["doc_id"] == "eiffel"
    assert body["citations"][0]["snippet"]
    assert "total_ms" in body["timings_ms"]


def test_ask_stream_sends_references_tokens_then_done(client):
    r = client.post("/ask", json={"question": "Where is the Eiffel Tower?", "collection": "docs", "stream": True})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    kinds = [e for e, _ in events]
    assert kinds[0] == "references" and kinds[-1] == "done"
    assert set(kinds[1:-1]) == {"token"}
    refs = json.loads(events[0][1])["sources"]
    assert refs[0]["doc_id"] == "eiffel"
    tokens = "".join(json.loads(d)["text"] for e, d in events if e == "token")
    done = json.loads(events[-1][1])
    assert done["answer"] == tokens.strip()
    assert done["mode"] == "answer" and done["refusal_reason"] is None
    assert [c["doc_id"] for c in done["citations"]] == ["eiffel"]
    assert "total_ms" in done["timings_ms"]


def test_ask_stream_errors_before_streaming_get_a_status(client):
    r = client.post("/ask", json={"question": "hi", "collection": "missing", "stream": True})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_ask_with_history(client):
    history = [{"role": "user", "content": "Tell me about the Eiffel Tower"}, {"role": "assistant", "content": "It is in Paris [1]."}]
    r = client.post("/ask", json={"question": "When was it completed?", "collection": "docs", "history": history})
    assert r.status_code == 200, r.text


def test_documents_crud(client):
    listing = client.get("/documents", params={"collection": "docs"}).json()
    assert [d["doc_id"] for d in listing["documents"]] == sorted(d["id"] for d in DOCS)
    page = client.get("/documents", params={"collection": "docs", "offset": 1, "limit": 1}).json()
    assert len(page["documents"]) == 1
    zh = client.get("/documents", params={"collection": "docs", "filters": json.dumps({"lang": "zh"})}).json()
    assert [d["doc_id"] for d in zh["documents"]] == ["gugong"]
    doc = client.get("/documents/eiffel", params={"collection": "docs"}).json()
    assert doc["text"].startswith("The Eiffel Tower") and doc["metadata"]["year"] == 1889
    assert client.delete("/documents/eiffel", params={"collection": "docs"}).status_code == 200
    assert client.get("/documents/eiffel", params={"collection": "docs"}).status_code == 404
    assert client.delete("/documents/eiffel", params={"collection": "docs"}).status_code == 404
    bad = client.get("/documents", params={"collection": "docs", "filters": "{not json"})
    assert bad.status_code == 422


def test_document_ids_may_contain_slashes(client):
    r = client.post("/documents", json={"collection": "docs", "documents": [{"id": "a/b.md", "text": "nested path doc"}]})
    assert r.status_code == 201
    assert client.get("/documents/a/b.md", params={"collection": "docs"}).json()["doc_id"] == "a/b.md"


def test_readding_a_document_replaces_it(client):
    r = client.post("/documents", json={"collection": "docs", "documents": [{"id": "eiffel", "text": "Replaced text."}]})
    assert r.json()["chunks"] == 1
    assert client.get("/documents/eiffel", params={"collection": "docs"}).json()["text"] == "Replaced text."


@pytest.mark.slow  # the first parse imports unstructured (~20 s on a busy machine)
def test_multipart_upload_inline(client):
    files = [("files", ("notes.txt", b"Zhiku serves hybrid search over HTTP.", "text/plain")),
             ("files", ("empty.txt", b"", "text/plain"))]
    r = client.post("/documents", files=files, data={"collection": "up", "metadata": json.dumps({"team": "a"})})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["doc_ids"] and body["job"] is None
    assert len(body["errors"]) == 1
    hits = client.post("/search", json={"query": "hybrid search HTTP", "collection": "up"}).json()["hits"]
    assert hits[0]["metadata"]["team"] == "a"


@pytest.mark.slow  # a job parses in a spawned process pool
def test_large_upload_becomes_a_job(tmp_path):
    settings = fake_settings(tmp_path, server={"inline_ingest_mb": 0.0001})
    with api_client(settings, seed=False) as client:
        text = ("Background ingest keeps requests short. " * 20).encode()
        r = client.post("/documents", files=[("files", ("big.txt", text, "text/plain"))], data={"collection": "jobs"})
        assert r.status_code == 202, r.text
        job = r.json()["job"]
        assert r.headers["location"] == f"/jobs/{job['id']}"
        for _ in range(1200):
            state = client.get(f"/jobs/{job['id']}").json()
            if state["state"] in ("succeeded", "failed"):
                break
            import time

            time.sleep(0.05)
        assert state["state"] == "succeeded", state
        assert state["documents"] == 1 and state["chunks"] >= 1
        assert client.get("/jobs/" + "0" * 32).status_code == 404
        metrics = client.get("/metrics").text
        assert 'zhiku_ingest_jobs_total{state="succeeded"} 1.0' in metrics


def test_collections_lifecycle(client):
    r = client.post("/collections", json={"name": "fresh"})
    assert r.status_code == 201
    assert r.json() | {"manifest": None} == {
        "name": "fresh", "documents": 0, "chunks": 0, "model": "fake-hash-32", "dim": 32, "manifest": None,
    }
    assert client.post("/collections", json={"name": "fresh"}).status_code == 409
    names = {c["name"]: c for c in client.get("/collections").json()["collections"]}
    assert names["docs"]["documents"] == 3 and names["docs"]["chunks"] >= 3
    assert client.get("/collections/docs").json()["model"] == "fake-hash-32"
    assert client.delete("/collections/fresh").status_code == 200
    assert client.get("/collections/fresh").status_code == 404
    assert client.delete("/collections/fresh").status_code == 404
    assert client.post("/collections", json={"name": "bad name!"}).status_code == 422


def test_abilities(client):
    r = client.post("/summarize", json={"text": "Zhiku is a server. It searches documents."})
    assert r.status_code == 200 and r.json()["text"]
    r = client.post("/summarize", json={"doc_ids": ["eiffel"], "collection": "docs"})
    assert r.status_code == 200 and r.json()["text"]
    assert client.post("/summarize", json={}).status_code == 422
    r = client.post("/rewrite", json={"text": "teh cat", "style": "correct"})
    assert r.status_code == 200
    assert client.post("/rewrite", json={"text": "hi", "style": "translate"}).status_code == 422
    r = client.post("/generate", json={"prompt": "Where is the Eiffel Tower?", "grounded": True, "collection": "docs"})
    assert r.status_code == 200 and r.json()["text"]
    r = client.post("/classify", json={"text": "I love it", "labels": ["positive", "negative"]})
    assert r.status_code == 200
    assert r.json()["label"] in ("positive", "negative")
    assert 0.0 <= r.json()["confidence"] <= 1.0
    r = client.post("/extract", json={"text": "Alice is 30", "schema": {"type": "object", "properties": {"name": {"type": "string"}}}})
    assert r.status_code == 200
    assert set(r.json()) >= {"data", "valid", "attempts"}


def test_health_ready_metrics(client):
    assert client.get("/healthz").json()["status"] == "ok"
    ready = _wait_ready(client)
    assert ready == {"status": "ok", "checks": {"store": "ok", "keys": "ok", "embedder": "ok"}}
    client.post("/search", json={"query": "Paris", "collection": "docs"})
    text = client.get("/metrics").text
    assert 'zhiku_http_requests_total{method="POST",route="/search",status="200"}' in text
    assert 'zhiku_stage_duration_seconds_count{route="/search",stage="embed"}' in text
    assert 'zhiku_ingest_documents_total{collection="docs"} 3.0' in text
    assert "zhiku_http_request_duration_seconds_bucket" in text


def test_openapi_lists_every_route(client):
    paths = set(client.get("/openapi.json").json()["paths"])
    assert {
        "/search", "/ask", "/documents", "/documents/{doc_id}", "/jobs/{job_id}", "/collections",
        "/collections/{name}", "/summarize", "/extract", "/classify", "/rewrite", "/generate",
        "/v1/chat/completions", "/v1/models", "/healthz", "/readyz", "/metrics",
    } <= paths


def _failing(messages):  # type: ignore[no-untyped-def]
    from zhiku.engine.errors import ModelUnavailable

    raise ModelUnavailable("model file vanished")


def test_stream_errors_after_start_arrive_as_an_error_event(tmp_path):
    from zhiku.engine.llm.fake import ScriptedGenerator

    with api_client(fake_settings(tmp_path), generator=ScriptedGenerator(_failing)) as client:
        r = client.post("/ask", json={"question": "Where is the Eiffel Tower?", "collection": "docs", "stream": True})
        events = sse_events(r.text)
        assert [e for e, _ in events] == ["references", "error"]
        err = json.loads(events[-1][1])["error"]
        assert err["code"] == "model_unavailable" and err["status"] == 503
        body = {"model": "zhiku/docs", "messages": [{"role": "user", "content": "Where is the Eiffel Tower?"}], "stream": True}
        r = client.post("/v1/chat/completions", json=body)
        lines = [d for _, d in sse_events(r.text)]
        assert json.loads(lines[-2])["error"]["code"] == "model_unavailable"
        assert lines[-1] == "[DONE]"
        assert client.app.state.services.gate.depth == 0
        r = client.post("/ask", json={"question": "Where is the Eiffel Tower?", "collection": "docs"})
        assert r.status_code == 503 and "retry-after" in r.headers


def test_openai_refusal_is_streamed_as_content(client):
    body = {"model": "zhiku/docs", "messages": [{"role": "user", "content": "Who won the 1950 chess olympiad?"}]}
    whole = client.post("/v1/chat/completions", json=body).json()
    assert whole["zhiku"]["refused"] is True and whole["zhiku"]["citations"] == []
    r = client.post("/v1/chat/completions", json={**body, "stream": True})
    chunks = [json.loads(d) for _, d in sse_events(r.text) if d != "[DONE]"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == whole["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["zhiku"]["refused"] is True


def _wait_ready(client, timeout_s: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        r = client.get("/readyz")
        if r.status_code == 200 or time.monotonic() > deadline:
            return r.json()
        time.sleep(0.05)


class _SlowEmbedder(FakeEmbedder):
    """A fake whose weights "load" until the test lets them, or fail to."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.release = threading.Event()
        self.fail = fail

    def warm_up(self) -> None:
        self.release.wait(30)
        if self.fail:
            raise ModelUnavailable("weights missing")


def _engine_with(tmp_path, embedder):
    return Engine(fake_settings(tmp_path), embedder=embedder)


def test_not_ready_until_the_embedder_is_loaded(tmp_path):
    embedder = _SlowEmbedder()
    engine = _engine_with(tmp_path, embedder)
    try:
        with TestClient(create_app(engine.settings, engine=engine)) as client:
            r = client.get("/readyz")
            assert r.status_code == 503
            assert r.json()["checks"]["embedder"] == "loading"
            assert client.get("/healthz").status_code == 200
            embedder.release.set()
            assert _wait_ready(client)["checks"]["embedder"] == "ok"
    finally:
        engine.close()


def test_embedder_that_cannot_load_is_reported_not_ready(tmp_path):
    embedder = _SlowEmbedder(fail=True)
    embedder.release.set()
    engine = _engine_with(tmp_path, embedder)
    try:
        with TestClient(create_app(engine.settings, engine=engine)) as client:
            deadline = time.monotonic() + 30
            while client.get("/readyz").json()["checks"]["embedder"] == "loading" and time.monotonic() < deadline:
                time.sleep(0.05)
            r = client.get("/readyz")
            assert r.status_code == 503
            assert r.json()["checks"]["embedder"] == "error: ModelUnavailable: weights missing"
    finally:
        engine.close()
