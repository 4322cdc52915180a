"""kill -9 of the real CLI at random points, then a re-run: exactly a clean run's chunks.

Also runs the CLI with every outbound (non-loopback) connection refused in
the CLI process and its parse workers (a sitecustomize on PYTHONPATH), to
show that ingest and search never reach for the network.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zhiku.engine.kb import KnowledgeBase

ZHIKU = [str(Path(sys.executable).parent / "zhiku")]
GUARD = '''
import os, socket
_real = socket.socket.connect
def _connect(self, address):
    if self.family != socket.AF_UNIX and not str(address[0]).startswith(("127.", "::1", "localhost")):
        with open(os.environ["ZHIKU_NET_LOG"], "a") as fh:
            fh.write(repr(address) + "\\n")
        raise OSError("network blocked by test")
    return _real(self, address)
socket.socket.connect = _connect
'''


def _corpus(root: Path) -> Path:
    rng = random.Random(7)
    words = "search index vector chunk table zebra river cloud 知识 检索 文档 系统".split()
    docs = root / "corpus"
    for d in range(2):
        (docs / f"dir{d}").mkdir(parents=True)
        for f in range(10):
            body = "\n\n".join(" ".join(rng.choice(words) for _ in range(60)) for _ in range(6))
            (docs / f"dir{d}" / f"doc{f}.md").write_text(f"# Doc {d}-{f}\n\n{body}\n", encoding="utf-8")
    rows = [{"_id": f"p{i}", "title": f"P {i}", "text": " ".join(rng.choice(words) for _ in range(80))}
            for i in range(200)]
    (docs / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return docs


def _env(tmp: Path) -> dict[str, str]:
    guard = tmp / "guard"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(GUARD)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZHIKU_")}
    env.update(
        ZHIKU_EMBED__BACKEND="fake", ZHIKU_CHUNK__SIZE="40", ZHIKU_CHUNK__OVERLAP="5",
        ZHIKU_NET_LOG=str(tmp / "net.log"), PYTHONPATH=str(guard),
        ZHIKU_CONFIG=str(tmp / "none.toml"),
    )
    return env


def _ingest(docs: Path, data: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [*ZHIKU, "ingest", str(docs), "--data-dir", str(data), "-c", "k", "--workers", "1", "--json"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _state(data: Path) -> list[str]:
    with KnowledgeBase(data, collection="k", embed__backend="fake") as kb:
        return sorted(p["chunk_id"] for _, p in kb.store.scroll(kb.collection, (), 1024))


@pytest.mark.integration
@pytest.mark.slow
def test_kill_at_random_points_then_rerun_equals_clean_run(tmp_path: Path) -> None:
    docs = _corpus(tmp_path)
    env = _env(tmp_path)
    started = time.monotonic()
    clean = _ingest(docs, tmp_path / "clean", env)
    out, err = clean.communicate(timeout=300)
    assert clean.returncode == 0, err.decode()[-2000:]
    duration = time.monotonic() - started
    expected = _state(tmp_path / "clean")
    assert len(expected) > 200 and len(set(expected)) == len(expected)

    rng = random.Random(2024)
    partial = 0
    for i in range(5):
        data = tmp_path / f"killed{i}"
        run = _ingest(docs, data, env)
        time.sleep(rng.uniform(0.25, 0.95) * duration)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
        if (data / "collections" / "k").exists():
            partial += 0 < len(_state(data)) < len(expected)
        rerun = _ingest(docs, data, env)
        out, err = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, err.decode()[-2000:]
        assert _state(data) == expected, f"kill point {i} diverged"
    assert partial >= 1, "no kill landed while chunks were being written"

    # Unchanged corpus: nothing embedded, and it is quick.
    started = time.monotonic()
    again = _ingest(docs, tmp_path / "clean", env)
    out, err = again.communicate(timeout=300)
    summary = json.loads(out)
    assert summary["chunks_embedded"] == 0 and summary["unchanged"] == 21
    assert not (tmp_path / "net.log").exists(), (tmp_path / "net.log").read_text()


@pytest.mark.integration
def test_ingest_and_search_make_no_outbound_connection(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Title\n\nThe quick brown fox. It jumps over the lazy dog.\n")
    (docs / "b.txt").write_text("A plain text file\n\nwith a short title line and a paragraph of prose.\n")
    (docs / "c.html").write_text("<html><body><h1>Page</h1><p>Some words here.</p></body></html>")
    env = _env(tmp_path)
    # Prove the guard is live in child processes before trusting its silence.
    probe = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('192.0.2.1', 80), 1)"],
                           env=env, capture_output=True)
    assert probe.returncode != 0 and (tmp_path / "net.log").read_text().strip()
    (tmp_path / "net.log").unlink()
    ingest = _ingest(docs, tmp_path / "data", env)
    out, err = ingest.communicate(timeout=300)
    assert ingest.returncode == 0, err.decode()[-2000:]
    assert json.loads(out)["new"] == 3
    search = subprocess.run([*ZHIKU, "search", "fox", "--data-dir", str(tmp_path / "data"), "-c", "k", "--json"],
                            env=env, capture_output=True, timeout=300)
    assert search.returncode == 0, search.stderr.decode()[-2000:]
    assert json.loads(search.stdout)["hits"][0]["doc_id"] == "a.md"
    assert not (tmp_path / "net.log").exists(), (tmp_path / "net.log").read_text()
