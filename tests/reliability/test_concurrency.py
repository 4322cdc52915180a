"""Concurrency: ingest, upload, add, delete, search, ask and a re-index in parallel on one collection.

Writers each own a set of document ids and keep rewriting them (a folder
ingested as a multipart upload, single-file uploads, JSON adds that cycle
through versions, add-then-delete), while readers search and ask, and a
third of the way in a re-index (POST /admin/reindex) builds a new version
and switches the alias under them. Every request must succeed. Each writer
records what its last write of each document was; the collection must then
hold exactly what a serial run of those last writes builds, and pass
`zhiku check`: a write lost by the re-index (one that landed in the old
version around the switch) shows up as a difference.
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


def _final_writes(url: str, client: httpx.Client, last: dict[str, dict[int, str]]) -> None:
    """The writes whose result the concurrent run must equal, in one serial order."""
    _ok(client.post(f"{url}/documents", json={"collection": "k", "documents": DOCS}))
    _ok(client.post(f"{url}/documents", params={"collection": "k"}, files=[("files", (n, d)) for n, d in FOLDER.items()]))
    for i, body in sorted(last["upload"].items()):
        _ok(client.post(f"{url}/documents", params={"collection": "k"}, files={"files": (f"up{i}.txt", body.encode())}))
    if last["add"]:
        _ok(client.post(f"{url}/documents", json={"collection": "k", "documents": _adds(last["add"][0])}))


def _adds(variant: int) -> list[dict[str, str]]:
    return [{"id": f"j{i}", "text": _text(200 + i + variant)} for i in range(6)]


def _ok(r: httpx.Response) -> httpx.Response:
    if r.status_code not in (200, 201, 202):
        raise AssertionError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}")
    return r


def _workers(url: str, client: httpx.Client, last: dict[str, dict[int, str]]) -> dict[str, Callable[[int], None]]:
    """The operations, each recording in `last` what its last write of each document was."""

    def ingest(n: int) -> None:
        _ok(client.post(f"{url}/documents", params={"collection": "k"},
                        files=[("files", (name, data)) for name, data in FOLDER.items()]))

    def upload(n: int) -> None:
        i = n % 3
        body = _text(i + n, 60) if n % 2 else _text(i, 60)
        _ok(client.post(f"{url}/documents", params={"collection": "k"}, files={"files": (f"up{i}.txt", body.encode())}))
        last["upload"][i] = body

    def add(n: int) -> None:
        _ok(client.post(f"{url}/documents", json={"collection": "k", "documents": _adds(n % 3)}))
        last["add"][0] = n % 3

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


def test_parallel_operations_and_a_reindex_equal_a_serial_run(tmp_path: Path) -> None:
    seconds = size(8, 60)
    data = tmp_path / "parallel"
    counts: dict[str, int] = {}
    errors: list[str] = []
    last: dict[str, dict[int, str]] = {"upload": {}, "add": {}}
    with running_server(create_app(fake_settings(data, store="edge"))) as url, httpx.Client(timeout=120) as client:
        _ok(client.post(f"{url}/documents", json={"collection": "k", "documents": DOCS}))
        jobs = _workers(url, client, last)
        stop = time.monotonic() + seconds
        reindexed = threading.Event()

        def loop(name: str) -> None:
            n = 0
            # Writers go on until the re-index is done, however long it takes on a loaded machine.
            while time.monotonic() < stop or not reindexed.is_set():
                try:
                    jobs[name](n)
                except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                    errors.append(f"{name}: {exc}")
                    reindexed.set()
                n += 1
            counts[name] = counts.get(name, 0) + n

        threads = [threading.Thread(target=loop, args=(name,)) for name in jobs for _ in range(2 if name in ("search", "ask") else 1)]
        for t in threads:
            t.start()
        try:
            time.sleep(seconds / 3)
            job = _ok(client.post(f"{url}/admin/reindex", json={"collection": "k", "embed_backend": "fake"})).json()
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                state = _ok(client.get(f"{url}/jobs/{job['id']}")).json()
                if state["state"] not in ("queued", "running"):
                    break
                time.sleep(0.2)
        finally:
            reindexed.set()
            for t in threads:
                t.join()
        assert state["state"] == "succeeded", state
    got, ok, rendered = _state(data)
    assert _resolved(data) != "k", "the re-index did not switch the alias"

    serial = tmp_path / "serial"
    with running_server(create_app(fake_settings(serial, store="edge"))) as url, httpx.Client(timeout=120) as client:
        _final_writes(url, client, last)
    expected, serial_ok, _ = _state(serial)
    assert serial_ok and expected

    operations = sum(counts.values()) + 1
    record("Concurrent operations", "operations / errors", operations=operations, errors=len(errors))
    print(f"concurrency: {counts} and a re-index in {seconds}s")
    assert errors == [], errors[:10]
    assert ok, rendered
    assert got == expected
    assert all(counts.get(name, 0) > 0 for name in jobs), counts
