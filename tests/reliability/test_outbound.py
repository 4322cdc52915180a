"""No outbound traffic: import, ingest, serve, search, ask and extract with every non-loopback connection refused.

A sitecustomize on PYTHONPATH (reliability_support.GUARD) wraps
`socket.connect` in every zhiku process and its parse workers: a
non-loopback connection is refused and logged. The guard is first shown to
be live, then the whole path runs; the log must stay empty. Bounded, the
fake embedder and LLM stand in; under `make reliability` the configured
real models load (the place a hub download would try to happen).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from api_support import free_port
from reliability_support import FULL, guarded_env, outbound_attempts, record

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BIN = Path(sys.executable).parent
ZHIKU = str(BIN / "zhiku")


def _env(tmp_path: Path) -> dict[str, str]:
    env = guarded_env(tmp_path)
    if FULL:  # the configured real models
        env.pop("ZHIKU_EMBED__BACKEND")
        env.pop("ZHIKU_LLM__BACKEND")
    return env


def _run(cmd: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(cmd, env=env, capture_output=True, timeout=900)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return done.stdout.decode()


def test_no_outbound_connection_anywhere(tmp_path: Path) -> None:
    env = _env(tmp_path)
    probe = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('192.0.2.1', 80), 1)"],
                           env=env, capture_output=True)
    assert probe.returncode != 0 and len(outbound_attempts(tmp_path)) == 1, "the guard is not live"
    (tmp_path / "net.log").unlink()

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Foxes\n\nThe quick brown fox jumps over the lazy dog. Foxes live in dens.\n")
    (docs / "b.html").write_text("<html><body><h1>故宫</h1><p>故宫位于北京市中心。</p></body></html>", encoding="utf-8")
    data = tmp_path / "data"
    _run([sys.executable, "-c", "import zhiku.cli, zhiku.api, zhiku.engine.engine, zhiku.ingest.pipeline, zhiku.library"], env)
    _run([ZHIKU, "ingest", str(docs), "-c", "k", "--data-dir", str(data), "--workers", "1"], env)
    hits = json.loads(_run([ZHIKU, "search", "fox", "-c", "k", "--data-dir", str(data), "--json"], env))["hits"]
    assert hits and hits[0]["doc_id"] == "a.md"
    _run([ZHIKU, "ask", "Where do foxes live?", "-c", "k", "--data-dir", str(data)], env)

    port = free_port()
    server = subprocess.Popen([ZHIKU, "serve", "--data-dir", str(data), "--port", str(port), "--log-level", "warning"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.3)
        with httpx.Client(timeout=600) as client:
            calls = [
                client.post(f"{url}/documents", params={"collection": "k"}, files={"files": ("c.txt", b"Dens are dug by foxes.")}),
                client.post(f"{url}/documents", json={"collection": "k", "documents": [{"id": "d", "text": "Owls hunt at night."}]}),
                client.post(f"{url}/search", json={"collection": "k", "query": "fox den"}),
                client.post(f"{url}/ask", json={"collection": "k", "question": "Where do foxes live?"}),
                client.post(f"{url}/extract", json={"text": "Alice is 30.", "schema": {
                    "type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}}),
                client.post(f"{url}/summarize", json={"text": "Foxes live in dens. They hunt at night."}),
            ]
        assert [c.status_code for c in calls] == [201, 201, 200, 200, 200, 200], [c.text[:200] for c in calls]
    finally:
        server.terminate()
        server.wait(timeout=60)
    attempts = outbound_attempts(tmp_path)
    record("Outbound connection attempts", "attempts", attempts=len(attempts))
    assert attempts == [], attempts
