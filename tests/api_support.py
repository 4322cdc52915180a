"""Helpers for the API tests: fake-backed settings, a TestClient, a real uvicorn server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from zhiku.api import create_app
from zhiku.engine.settings import Settings, load_settings

DOCS = [
    {"id": "eiffel", "text": "The Eiffel Tower is in Paris. It was completed in 1889.", "title": "Eiffel Tower",
     "metadata": {"lang": "en", "year": 1889}},
    {"id": "great-wall", "text": "The Great Wall of China is thousands of kilometres long.", "title": "Great Wall",
     "metadata": {"lang": "en", "year": 220}},
    {"id": "gugong", "text": "故宫位于北京市中心，是明清两代的皇家宫殿。", "title": "故宫", "metadata": {"lang": "zh", "year": 1420}},
]


def fake_settings(data_dir: Path, store: str = "server", **overrides: Any) -> Settings:
    """Fake embedder and generator; an in-memory server store unless store='edge'."""
    store_cfg: dict[str, Any] = {"backend": "server", "url": ":memory:"} if store == "server" else {"backend": "edge"}
    return load_settings(
        data_dir=data_dir,
        embed={"backend": "fake"},
        llm={"backend": "fake"},
        store=store_cfg,
        **overrides,
    )


@contextlib.contextmanager
def api_client(settings: Settings, seed: bool = True, **app_kwargs: Any) -> Iterator[TestClient]:
    """A TestClient over a fresh app (lifespan run), with DOCS in collection `docs`."""
    with TestClient(create_app(settings, **app_kwargs)) as client:
        if seed:
            r = client.post("/documents", json={"collection": "docs", "documents": DOCS})
            assert r.status_code == 201, r.text
        yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(app: FastAPI, timeout_s: float = 30.0) -> Iterator[str]:
    """Serve `app` with a real uvicorn on a free loopback port; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """Parse an SSE body into (event, data) pairs."""
    out: list[tuple[str | None, str]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event, data = None, []
        for line in block.splitlines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        out.append((event, "\n".join(data)))
    return out
