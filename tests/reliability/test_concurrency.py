"""Concurrency: ingest, upload, add, search, ask and delete in parallel on one collection.

Writers each own a set of document ids and keep rewriting them (a folder
ingested as a multipart upload, single-file uploads, JSON adds that cycle
through versions, add-then-delete), while readers search and ask. Every
request must succeed; when time is up each writer leaves its documents in a
known final state, and the collection must then hold exactly what a serial
run of those final writes builds, and pass `zhiku check`. Then a re-index
(POST /admin/reindex) runs while searches and asks go on: they keep
succeeding, and the re-indexed collection holds the same chunks and checks
clean. Writes are not run beside the re-index: engine/reindex.py documents
that writes landing between its catch-up and its alias switch are not
carried over (pause ingest during a re-index).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

import httpx
import pytest
from api_support import DOCS, fake_settings, running_server
from reliability_support import record, size

from zhiku.api import create_app
from zhiku.engine.check import check_collection
from zhiku.engine.engine import Engine

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WORDS = "alpha beta gamma delta river stone cloud omega 知识 检索 文档 系统".split()


def _text(seed: int, n: int = 120) -> str:
    return " ".join(WORDS[(seed * 7 + i * (seed % 5 + 1)) % len(WORDS)] for i in range(n))


FOLDER = {f"folder-{i}.md": f"# Folder file {i}\n\n{_text(i + 100)}\n".encode() for i in range(4)}


def _final_writes(url: str, client: httpx.Client) -> None:
    """The writes whose result the concurrent run must equal, in one serial order."""
    _ok(client.post(f"{url}/documents", json={"collection": "k", "documents": DOCS}))
    _ok(client.post(f"{url}/documents", params={"collection": "k"}, files=[("files", (n, d)) for n, d in FOLDER.items()]))
    for i in range(3):
        _ok(client.post(f"{url}/documents", params={"collection": "k"}, files={"files": (f"up{i}.txt", _text(i, 60).encode())}))
    _ok(client.post(f"{url}/documents", json={"collection": "k", "documents": [
        {"id": f"j{i}", "text": _text(200 + i)} for i in range(6)]}))


def _ok(r: httpx.Response) -> httpx.Response:
    if r.status_code not in (200, 201, 202):
        raise AssertionError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}")
    return r


def _workers(url: str, client: httpx.Client) -> dict[str, Callable[[int], None]]:
    def ingest(n: int) -> None:
        _ok(client.post(f"{url}/documents", params={"collection": "k"},
                        files=[("files", (name, data)) for name, data in FOLDER.items()]))

    def upload(n: int) -> None:
        i = n % 3
        body = _text(i + n, 60) if n % 2 else _text(i, 60)
        _ok(client.post(f"{url}/documents", params={"collection": "k"}, files={"files": (f"up{i}.txt", body.encode())}))

    def add(n: int) -> None:
        _ok(client.post(f"{url}/documents", json={"collection": "k", "documents": [
            {"id": f"j{i}", "text": _text(200 + i + (n % 3))} for i in range(6)]}))

    def delete(n: int) -> None:
        doc = f"tmp{n % 4}"
        _ok(client.post(f"{url}/documents", json={"collection": "k", "documents": [{"id": doc, "text": _text(n)}]}))
        _ok(client.delete(f"{url}/documents/{doc}", params={"collection": "k"}))

    def search(n: int) -> None:
        _ok(client.post(f"{url}/search", json={"collection": "k", "query": WORDS[n % len(WORDS)], "top_k": 5}))

    def ask(n: int) -> None:
        _ok(client.post(f"{url}/ask", json={"collection": "k", "question": f"what about {WORDS[n % len(WORDS)]}?"}))

    return {"ingest": ingest, "upload": upload, "add": add, "delete": delete, "search": search, "ask": ask}


def _state(data: Path) -> tuple[list[str], bool, str]:
    settings = fake_settings(data, store="edge")
    engine = Engine(settings)
    try:
        physical = engine.store.resolve("k")  # the re-indexed version, behind the alias
        chunks = sorted(p["chunk_id"] for _, p in engine.store.scroll(physical, (), 1024))
        report = check_collection(engine.store, "k", settings)
    finally:
        engine.close()
    return chunks, report.ok, report.render()


def _resolved(data: Path) -> str:
    engine = Engine(fake_settings(data, store="edge"))
    try:
        return engine.store.resolve("k")
    finally:
        engine.close()


def test_parallel_operations_equal_a_serial_run(tmp_path: Path) -> None:
    seconds = size(8, 60)
    serial = tmp_path / "serial"
    with running_server(create_app(fake_settings(serial, store="edge"))) as url, httpx.Client(timeout=120) as client:
        _final_writes(url, client)
    expected, ok, _ = _state(serial)
    assert ok and expected

    data = tmp_path / "parallel"
    counts: dict[str, int] = {}
    errors: list[str] = []
    with running_server(create_app(fake_settings(data, store="edge"))) as url, httpx.Client(timeout=120) as client:
        _ok(client.post(f"{url}/documents", json={"collection": "k", "documents": DOCS}))
        jobs = _workers(url, client)
        stop = time.monotonic() + seconds

        def loop(name: str) -> None:
            n = 0
            while time.monotonic() < stop:
                try:
                    jobs[name](n)
                except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                    errors.append(f"{name}: {exc}")
                n += 1
            counts[name] = counts.get(name, 0) + n

        threads = [threading.Thread(target=loop, args=(name,)) for name in jobs for _ in range(2 if name in ("search", "ask") else 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        _final_writes(url, client)

        # Re-index beside readers only (see the module docstring).
        job = _ok(client.post(f"{url}/admin/reindex", json={"collection": "k", "embed_backend": "fake"})).json()
        stop = time.monotonic() + 600
        readers = [threading.Thread(target=loop, args=(name,)) for name in ("search", "ask")]
        for t in readers:
            t.start()
        while time.monotonic() < stop:
            state = _ok(client.get(f"{url}/jobs/{job['id']}")).json()
            if state["state"] not in ("queued", "running"):
                break
            time.sleep(0.2)
        stop = time.monotonic()
        for t in readers:
            t.join()
        assert state["state"] == "succeeded", state
    got, ok, rendered = _state(data)
    assert _resolved(data) != "k", "the re-index did not switch the alias"
    operations = sum(counts.values())
    record("Concurrent operations", "operations / errors", operations=operations, errors=len(errors))
    print(f"concurrency: {counts} in {seconds}s")
    assert errors == [], errors[:10]
    assert ok, rendered
    assert got == expected
    assert all(counts.get(name, 0) > 0 for name in jobs), counts
