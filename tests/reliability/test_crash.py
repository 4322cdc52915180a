"""Crash: kill -9 a bulk ingest and the server at random points, a re-index included; every restart converges.

Three kinds of run, in turn:

- a bulk `zhiku ingest` (the corpus of tests/test_ingest_crash.py) killed
  at a random point, then run again;
- a `zhiku serve` killed at a random point of a script of JSON adds,
  replacements, file uploads and deletes, with a re-index
  (POST /admin/reindex) started part way and running beside the writes;
  then started again and the whole script (re-index included) replayed;
- the same, killed inside the re-index: during its build, during its
  catch-up, or right after its switch, aimed from the clean run's timing.
  Where the kill landed is read back from the data dir (no new version yet,
  a half-built one, or switched) and printed.

After each kill `zhiku check` (its code, run in the test process; the CLI
itself checks the clean run) must run without crashing: with `--repair`
(which drops a half-built version), or for every other re-index run
without it, so the re-run's re-index has to discard that version itself.
After the re-run, `zhiku check` must pass and the collection must hold
exactly the chunks of a run that was never killed. A run where either fails
is inconsistent.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Callable

import httpx
import pytest
from api_support import free_port
from reliability_support import guarded_env, outbound_attempts, record, size
from test_ingest_crash import _corpus

from zhiku.engine.check import check_collection
from zhiku.engine.engine import Engine
from zhiku.engine.kb import KnowledgeBase
from zhiku.engine.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ZHIKU = str(Path(sys.executable).parent / "zhiku")
CHUNKING = {"ZHIKU_CHUNK__SIZE": "40", "ZHIKU_CHUNK__OVERLAP": "5"}
# The script's operation before which the re-index starts; the rest run beside it.
REINDEX_AT = 4
# Where in a re-index the third kind of run aims its kill, in turn.
PHASES = ("build", "catch-up", "after switch")


def _state(data: Path) -> list[str]:
    with KnowledgeBase(data, collection="k", embed__backend="fake", chunk__size=40, chunk__overlap=5) as kb:
        return sorted(p["chunk_id"] for _, p in kb.store.scroll(kb.collection, (), 1024))


def _check(data: Path, env: dict[str, str], repair: bool = False) -> subprocess.CompletedProcess[bytes]:
    cmd = [ZHIKU, "check", "-c", "k", "--data-dir", str(data)] + (["--repair"] if repair else [])
    return subprocess.run(cmd, env=env, capture_output=True, timeout=300)


def _check_here(data: Path, repair: bool = False) -> tuple[bool, str]:
    """What `zhiku check` runs, in this process (a CLI start per check would double the suite's time)."""
    settings = load_settings(data_dir=data, embed={"backend": "fake"}, llm={"backend": "fake"},
                             chunk={"size": 40, "overlap": 5})
    engine = Engine(settings)
    try:
        report = check_collection(engine.store, "k", settings, repair=repair)
    finally:
        engine.close()
    return report.ok, report.render()


def _ingest(docs: Path, data: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [ZHIKU, "ingest", str(docs), "--data-dir", str(data), "-c", "k", "--workers", "1", "--json"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _script(rng_seed: int, docs: Path) -> list[tuple[str, dict]]:
    """The server-side operations: adds, replacements, uploads and deletes, in a fixed order."""
    rng = random.Random(rng_seed)
    words = "alpha beta gamma delta river stone cloud 知识 检索 文档".split()
    ops: list[tuple[str, dict]] = []
    for batch in range(size(3, 6)):  # bounded: every kind of operation still, fewer of each
        documents = [{"id": f"d{batch}-{i}", "text": " ".join(rng.choice(words) for _ in range(150))} for i in range(8)]
        ops.append(("add", {"collection": "k", "documents": documents}))
        if batch % 2:
            ops.append(("add", {"collection": "k", "documents": [
                {"id": f"d{batch - 1}-0", "text": "replaced " + " ".join(rng.choice(words) for _ in range(90))}]}))
            ops.append(("delete", {"id": f"d{batch - 1}-1"}))
        ops.append(("upload", {"name": f"up{batch}.md", "path": str(next(iter(sorted(docs.rglob("*.md")))))}))
    return ops


def _apply(client: httpx.Client, url: str, op: str, arg: dict) -> None:
    if op == "add":
        r = client.post(f"{url}/documents", json=arg)
    elif op == "delete":
        r = client.delete(f"{url}/documents/{arg['id']}", params={"collection": "k"})
        if r.status_code == 404:  # replayed after the delete had landed
            return
    else:
        data = Path(arg["path"]).read_bytes()
        r = client.post(f"{url}/documents", params={"collection": "k"}, files={"files": (arg["name"], data)})
    assert r.status_code in (200, 201), f"{op}: {r.status_code} {r.text[:300]}"


def _serve(data: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([ZHIKU, "serve", "--data-dir", str(data), "--port", str(port), "--log-level", "warning"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode()[-2000:] if proc.stderr else "server died")
        time.sleep(0.2)
    raise AssertionError("server did not start")


def _play(
    client: httpx.Client, url: str, ops: list[tuple[str, dict]], on_reindex: Callable[[], None] | None = None
) -> dict[str, float]:
    """The script with a re-index started before op REINDEX_AT; returns when the re-index
    started and finished, in seconds after it was asked for."""
    job = None
    for i, (op, arg) in enumerate(ops):
        if i == REINDEX_AT:
            t0 = time.time()
            r = client.post(f"{url}/admin/reindex", json={"collection": "k", "embed_backend": "fake"})
            assert r.status_code == 202, f"reindex: {r.status_code} {r.text[:300]}"
            job = r.json()["id"]
            if on_reindex is not None:
                on_reindex()
        _apply(client, url, op, arg)
    assert job is not None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = client.get(f"{url}/jobs/{job}").json()
        if state["state"] not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert state["state"] == "succeeded", state

    def at(stamp: str) -> float:
        return datetime.fromisoformat(stamp).timestamp() - t0

    return {"start": at(state["started_at"]), "end": at(state["finished_at"])}


def _run_script(data: Path, env: dict[str, str], ops: list[tuple[str, dict]]) -> dict[str, float]:
    """The whole script against a server that is stopped cleanly at the end; the re-index's timing."""
    proc, url = _serve(data, env)
    try:
        with httpx.Client(timeout=60) as client:
            return _play(client, url, ops)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def _kill_server_midway(
    data: Path, env: dict[str, str], ops: list[tuple[str, dict]], at: float, after_reindex: bool = False
) -> None:
    """Run the script against a server that is killed `at` seconds in (after the re-index
    was asked for, with `after_reindex`), from another thread."""
    proc, url = _serve(data, env)
    timer = threading.Timer(at, lambda: proc.send_signal(signal.SIGKILL))
    if not after_reindex:
        timer.start()
    try:
        with httpx.Client(timeout=60) as client:
            try:
                _play(client, url, ops, timer.start if after_reindex else None)
            except (httpx.HTTPError, AssertionError):
                pass
    finally:
        timer.cancel()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)


def _landed(data: Path) -> str:
    """Where a kill landed in the re-index, read from what it left."""
    engine = Engine(load_settings(data_dir=data, embed={"backend": "fake"}, llm={"backend": "fake"}))
    try:
        live = engine.store.resolve("k")
        newer = [n for n in engine.versions("k") if n > live and n != "k"]
    finally:
        engine.close()
    if newer:
        return "half built"
    return "switched" if live != "k" else "not started"


@pytest.mark.timeout(size(900, 5400))
def test_kill_nine_at_random_points_converges_and_checks_clean(tmp_path: Path) -> None:
    docs = _corpus(tmp_path)
    env = guarded_env(tmp_path, **CHUNKING)
    ops = _script(11, docs)

    started = time.monotonic()
    clean = _ingest(docs, tmp_path / "clean-ingest", env)
    _, err = clean.communicate(timeout=600)
    assert clean.returncode == 0, err.decode()[-2000:]
    ingest_s = time.monotonic() - started
    expected_ingest = _state(tmp_path / "clean-ingest")

    started = time.monotonic()
    window = _run_script(tmp_path / "clean-serve", env, ops)
    serve_s = time.monotonic() - started
    print(f"clean run: script {serve_s:.1f} s, re-index from {window['start']:.2f} s to {window['end']:.2f} s")
    expected_serve = _state(tmp_path / "clean-serve")
    assert _check(tmp_path / "clean-serve", env).returncode == 0

    rng = random.Random(2026)
    runs = size(3, 21)
    inconsistent: list[str] = []
    landed: Counter[str] = Counter()
    for i in range(runs):
        data = tmp_path / f"run{i}"
        kind = ("ingest", "server", "reindex")[i % 3]
        repair = True
        if kind == "ingest":
            proc = _ingest(docs, data, env)
            time.sleep(rng.uniform(0.2, 0.95) * ingest_s)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        elif kind == "server":
            _kill_server_midway(data, env, ops, rng.uniform(0.1, 0.9) * serve_s)
        else:
            phase = PHASES[(i // 3) % len(PHASES)]
            start, end = window["start"], window["end"]
            at = {"build": start + rng.uniform(0.0, 0.5) * (end - start),
                  "catch-up": start + rng.uniform(0.5, 1.0) * (end - start),
                  "after switch": end + rng.uniform(0.0, 0.2)}[phase]
            _kill_server_midway(data, env, ops, at, after_reindex=True)
            where = _landed(data)
            landed[f"aimed at {phase}, landed {where}"] += 1
            repair = (i // 3) % 2 == 0  # otherwise the re-run's re-index drops what the kill left
        if (data / "collections" / "k").exists():
            try:
                _check_here(data, repair=repair)  # may report work a re-run finishes; must not crash
            except Exception as exc:  # noqa: BLE001 - a crash of the check is the finding
                inconsistent.append(f"run {i}: check after kill crashed: {type(exc).__name__}: {exc}")
                continue
        if kind == "ingest":
            rerun = _ingest(docs, data, env)
            _, err = rerun.communicate(timeout=600)
            assert rerun.returncode == 0, err.decode()[-2000:]
            expected = expected_ingest
        else:
            _run_script(data, env, ops)
            expected = expected_serve
        ok, rendered = _check_here(data)
        if not ok:
            inconsistent.append(f"run {i}: check after re-run: {rendered[-800:]}")
        elif _state(data) != expected:
            inconsistent.append(f"run {i}: state differs from a clean run")
        print(f"crash run {i + 1}/{runs} ({kind}): inconsistent so far {len(inconsistent)}", flush=True)
    print(f"re-index kills: {dict(landed)}")
    record("Crash runs", "runs / inconsistent", runs=runs, inconsistent=len(inconsistent))
    assert inconsistent == [], "\n".join(inconsistent)
    assert outbound_attempts(tmp_path) == []
