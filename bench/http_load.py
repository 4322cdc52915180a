"""HTTP load on POST /search: p50/p99, requests/s and errors, alone and during an ingest.

Builds (once) a collection of --size chunks from bench/corpus.py (chunk vectors
from cached sentence embeddings, shared with bench/search_latency.py), optimizes it, starts
`zhiku serve` in a subprocess, and drives it with --clients concurrent httpx
clients for --seconds. Every request uses a fresh squad-dev question, so the
embedder's query cache never answers for it. The second phase repeats the load
while another client keeps POSTing new documents to the same collection.

    python bench/http_load.py [--size 100000] [--clients 16] [--seconds 30] [--asks 10]

The report has the server's CPU milliseconds per request (and per ask with
--asks) and its resident memory: the inputs of deploy/README.md's capacity model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import ROOT, chunk_vectors, chunks, queries  # noqa: E402

from zhiku.engine.settings import load_settings  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LIVE = "live-ingest"
SERVE = "import typer; from zhiku.cli.serve import serve; typer.run(serve)"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def _embed(env: dict[str, str]) -> dict[str, str]:
    """The embedder the server under test uses: the environment's, else the default."""
    backend = env.get("ZHIKU_EMBED__BACKEND")
    return {"backend": backend} if backend else {}


def build(data_dir: Path, collection: str, size: int, env: dict[str, str]) -> None:
    """Write `size` chunks with precomputed embeddings, then optimize (skipped if present)."""
    from zhiku.engine.engine import Engine
    from zhiku.engine.types import Chunk

    settings = load_settings(data_dir=data_dir, embed=_embed(env))
    engine = Engine(settings)
    try:
        kb = engine.kb(collection, create=True)
        if kb.count() - kb.count({"title": LIVE}) == size:
            return
        records = chunks(size)
        dense = chunk_vectors(records, kb.embedder)
        t0 = time.perf_counter()
        for i in range(0, size, 4096):
            part = records[i : i + 4096]
            cs = [
                Chunk(doc_id=r["id"], chunk_id=f"{r['id']}#0", chunk_index=0, text=r["text"],
                      content_hash=r["id"], chunk_count=1, title=r["title"])
                for r in part
            ]
            kb.add_chunks(cs, dense=dense[i : i + 4096])
        kb.flush()
        t1 = time.perf_counter()
        kb.optimize()
        print(f"built {size} chunks in {t1 - t0:.0f}s, optimize {time.perf_counter() - t1:.0f}s", file=sys.stderr)
    finally:
        engine.close()


def remove_live(data_dir: Path, collection: str, env: dict[str, str]) -> None:
    """Drop the documents the ingest phase added, so the next run finds the same collection."""
    from zhiku.engine.filters import parse_filters
    from zhiku.engine.engine import Engine

    settings = load_settings(data_dir=data_dir, embed=_embed(env))
    engine = Engine(settings)
    try:
        engine.store.delete_where(collection, parse_filters({"title": LIVE}))
        engine.store.flush(collection)
    finally:
        engine.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> dict[str, float]:
    """Resident memory of a process now and at its peak, MiB (Linux /proc); sizes a replica."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {k: round(int(fields[k].split()[0]) / 1024, 1) for k in ("VmRSS", "VmHWM") if k in fields}


def measured(phase, server_pid: int) -> dict:  # type: ignore[no-untyped-def]
    """Run one load phase; add the server's and this client's CPU ms per request."""
    server0, client0 = cpu_seconds(server_pid), time.process_time()
    out = phase()
    n = max(1, out["ok"])
    out["server_cpu_ms_per_request"] = round((cpu_seconds(server_pid) - server0) * 1000 / n, 2)
    out["client_cpu_ms_per_request"] = round((time.process_time() - client0) * 1000 / n, 2)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, "--port", str(port), "--data-dir", str(data_dir), "--log-level", "warning"],
        env=env,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit("server exited during startup")
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not become ready")


async def load(url: str, collection: str, qs: list[str], clients: int, seconds: float, ingest: bool) -> dict:
    """Run the search load (and optionally a concurrent ingest) for `seconds`."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    next_q = 0
    ingested = {"requests": 0, "documents": 0, "errors": 0}
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def searcher() -> None:
            nonlocal next_q
            while time.perf_counter() < stop_at:
                q = qs[next_q % len(qs)]
                next_q += 1
                t0 = time.perf_counter()
                try:
                    r = await client.post("/search", json={"query": q, "collection": collection, "top_k": 10})
                    key = None if r.status_code == 200 else str(r.status_code)
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                if key is None:
                    latencies.append((time.perf_counter() - t0) * 1000)
                else:
                    errors[key] = errors.get(key, 0) + 1

        async def ingester() -> None:
            batch_no = 0
            texts = [r["text"] for r in chunks(20_000, seed=99)]
            while time.perf_counter() < stop_at:
                part = texts[(batch_no * 32) % len(texts) :][:32]
                docs = [{"id": f"live-{batch_no}-{i}", "text": t, "title": LIVE} for i, t in enumerate(part)]
                batch_no += 1
                try:
                    r = await client.post("/documents", json={"collection": collection, "documents": docs})
                    ok = r.status_code == 201
                except httpx.HTTPError:
                    ok = False
                ingested["requests"] += 1
                ingested["documents"] += len(docs) if ok else 0
                ingested["errors"] += 0 if ok else 1

        t0 = time.perf_counter()
        tasks = [searcher() for _ in range(clients)] + ([ingester()] if ingest else [])
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - t0
    out = {
        "requests": len(latencies) + sum(errors.values()),
        "ok": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / wall, 1),
        "p50_ms": round(median(latencies), 2) if latencies else None,
        "p90_ms": round(pct(latencies, 90), 2),
        "p99_ms": round(pct(latencies, 99), 2),
        "seconds": round(wall, 1),
    }
    if ingest:
        out["ingest"] = ingested
    return out


async def asks(url: str, collection: str, qs: list[str]) -> dict:
    """POST /ask for each question in turn (one at a time, so CPU per ask is the model's alone)."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    refused = 0
    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        for q in qs:
            t1 = time.perf_counter()
            try:
                r = await client.post("/ask", json={"question": q, "collection": collection})
                key = None if r.status_code == 200 else str(r.status_code)
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            if key is None:
                latencies.append((time.perf_counter() - t1) * 1000)
                refused += bool(r.json().get("refused"))
            else:
                errors[key] = errors.get(key, 0) + 1
    return {"requests": len(qs), "ok": len(latencies), "refused": refused, "errors": errors,
            "p50_ms": round(median(latencies), 1) if latencies else None,
            "seconds": round(time.perf_counter() - t0, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--data-dir", type=Path, default=RESULTS / "http-index")
    ap.add_argument("--embed-backend", default=None, help="e.g. fake, for a smoke run (numbers not comparable)")
    ap.add_argument("--no-ingest-phase", action="store_true")
    ap.add_argument("--build-only", action="store_true", help="build the collection and stop")
    ap.add_argument("--asks", type=int, default=0, help="then POST /ask this many questions, one at a time")
    ap.add_argument("--out", type=Path, default=RESULTS / "http_load.json")
    args = ap.parse_args()

    env = {**os.environ, "ZHIKU_STORE__BACKEND": "edge"}
    if args.embed_backend:
        env["ZHIKU_EMBED__BACKEND"] = args.embed_backend
    collection = f"http{args.size}"
    build(args.data_dir, collection, args.size, env)
    if args.build_only:
        return 0

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(args.data_dir, port, env)
    report: dict[str, object] = {"size": args.size, "clients": args.clients, "cpus": os.cpu_count(),
                                 "embed_backend": args.embed_backend or "default",
                                 "loadavg_before": os.getloadavg()}
    try:
        pool = queries(20_000)  # every squad-dev question; fresh ones per phase below
        asyncio.run(load(url, collection, pool[:200], args.clients, args.warmup, ingest=False))
        half = len(pool) // 2
        report["search"] = measured(
            lambda: asyncio.run(load(url, collection, pool[200:half], args.clients, args.seconds, ingest=False)),
            proc.pid,
        )
        print(f"search only: {report['search']}", file=sys.stderr)
        if not args.no_ingest_phase:
            report["search_during_ingest"] = measured(
                lambda: asyncio.run(load(url, collection, pool[half:], args.clients, args.seconds, ingest=True)),
                proc.pid,
            )
            print(f"during ingest: {report['search_during_ingest']}", file=sys.stderr)
        if args.asks:
            report["ask"] = measured(lambda: asyncio.run(asks(url, collection, pool[-args.asks :])), proc.pid)
            print(f"ask: {report['ask']}", file=sys.stderr)
        report["loadavg_after"] = os.getloadavg()
        report["server_memory_mb"] = rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        remove_live(args.data_dir, collection, env)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
