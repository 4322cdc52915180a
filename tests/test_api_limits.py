"""Limits: body size (413), media type (415), caps (422), LLM queue (429/503), timeouts."""

from __future__ import annotations

import threading
import time

from api_support import api_client, fake_settings

from zhiku.engine.llm.fake import ScriptedGenerator


def test_body_too_large_is_413(tmp_path):
    with api_client(fake_settings(tmp_path, server={"max_body_mb": 0.001}), seed=False) as client:
        r = client.post("/search", json={"query": "x" * 5000, "collection": "docs"})
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"
        small = client.post("/search", json={"query": "x", "collection": "docs"})
        assert small.status_code == 404  # got past the limit; the collection just does not exist


def test_unsupported_media_is_415(tmp_path):
    with api_client(fake_settings(tmp_path), seed=False) as client:
        r = client.post("/search", content=b"query=x", headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 415
        assert r.json()["error"]["code"] == "unsupported_media_type"
        r = client.post("/documents", content=b"hello", headers={"content-type": "text/plain"})
        assert r.status_code == 415
        r = client.post("/v1/chat/completions", content=b"{}", headers={"content-type": "text/plain"})
        assert r.status_code == 415


def test_text_and_top_k_caps_are_422(tmp_path):
    settings = fake_settings(tmp_path, server={"max_text_chars": 20}, retrieval={"max_top_k": 50})
    with api_client(settings) as client:
        r = client.post("/search", json={"query": "x" * 21, "collection": "docs"})
        assert r.status_code == 422 and r.json()["error"]["details"]["limit"] == 20
        r = client.post("/search", json={"query": "Paris", "collection": "docs", "top_k": 51})
        assert r.status_code == 422 and r.json()["error"]["details"]["limit"] == 50
        assert client.post("/search", json={"query": "Paris", "collection": "docs", "top_k": 50}).status_code == 200
        long_doc = {"collection": "docs", "documents": [{"text": "y " * 50}]}
        assert client.post("/documents", json=long_doc).status_code == 201  # documents get chunked
        assert client.post("/rewrite", json={"text": "z" * 21}).status_code == 422
        msgs = [{"role": "user", "content": "q" * 21}]
        assert client.post("/v1/chat/completions", json={"model": "zhiku/docs", "messages": msgs}).status_code == 422


class Blocking:
    """A script that holds every generation until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)

    def __call__(self, messages):  # type: ignore[no-untyped-def]
        self.entered.release()
        self.release.wait(10)
        return "done"


def _in_thread(fn):  # type: ignore[no-untyped-def]
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", fn()))
    t.start()
    return t, out


def test_full_llm_queue_is_429_with_retry_after(tmp_path):
    script = Blocking()
    settings = fake_settings(tmp_path, server={"llm_queue": 1, "llm_workers": 1})
    with api_client(settings, seed=False, generator=ScriptedGenerator(script)) as client:
        t, out = _in_thread(lambda: client.post("/rewrite", json={"text": "first"}))
        assert script.entered.acquire(timeout=10)
        r = client.post("/rewrite", json={"text": "second"})
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "overloaded"
        assert int(r.headers["retry-after"]) >= 1
        script.release.set()
        t.join(10)
        assert out["r"].status_code == 200
        # The slot is free again.
        assert client.post("/rewrite", json={"text": "third"}).status_code == 200
        assert 'zhiku_llm_rejected_total{reason="queue_full"} 1.0' in client.get("/metrics").text


def test_waiting_too_long_for_a_slot_is_503(tmp_path):
    script = Blocking()
    settings = fake_settings(tmp_path, server={"llm_queue": 4, "llm_workers": 1, "request_timeout_s": 0.3})
    with api_client(settings, seed=False, generator=ScriptedGenerator(script)) as client:
        t, out = _in_thread(lambda: client.post("/rewrite", json={"text": "first"}))
        assert script.entered.acquire(timeout=10)
        r = client.post("/rewrite", json={"text": "second"})
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "timeout"
        assert "retry-after" in r.headers
        script.release.set()
        t.join(10)
        # The first one itself ran past the 0.3 s timeout.
        assert out["r"].status_code == 503


def test_slow_generation_times_out_with_503(tmp_path):
    def slow(messages):  # type: ignore[no-untyped-def]
        time.sleep(3.0)
        return "late"

    # The answer must not wait for the generation (3 s); the margin is for a loaded machine.
    # The timing measures the timeout, not GIL-heavy work that competes with the
    # event loop: the LLM layer's cold import and the start-up warm-up (jieba).
    import zhiku.engine.llm.abilities  # noqa: F401

    settings = fake_settings(tmp_path, server={"request_timeout_s": 0.2})
    with api_client(settings, seed=False, generator=ScriptedGenerator(slow)) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        start = time.monotonic()
        r = client.post("/generate", json={"prompt": "hello"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "timeout"
        assert time.monotonic() - start < 2.0


def test_stream_releases_its_slot(tmp_path):
    settings = fake_settings(tmp_path, server={"llm_queue": 1})
    with api_client(settings) as client:
        for _ in range(3):
            r = client.post("/ask", json={"question": "Where is the Eiffel Tower?", "collection": "docs", "stream": True})
            assert r.status_code == 200
        assert client.app.state.services.gate.depth == 0
