"""Prometheus metrics: requests and latencies per route, engine stages, ingest.

Each app gets its own registry (no process-global state), so several apps in
one test process do not collide. Every label taken from a request is bounded:
routes are labelled by their template (`/documents/{doc_id}`, or "unmatched"),
never the raw path; methods outside the standard set become "other" (h11
accepts any token as a method); statuses are three-digit codes.
"""

from __future__ import annotations

import time
from typing import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
CONTENT_TYPE = CONTENT_TYPE_LATEST
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    """A request method as a bounded label."""
    return method if method in METHODS else "other"


def status_label(status: int) -> str:
    return str(status) if 100 <= status <= 599 else "other"


class Metrics:
    """The server's collectors on a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "zhiku_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "zhiku_http_request_duration_seconds",
            "HTTP request latency (to the last body byte)",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("zhiku_http_in_flight", "Requests being served", registry=r)
        self.stage = Histogram(
            "zhiku_stage_duration_seconds",
            "Engine stage latency (embed, dense, bm25, fusion, retrieve, generate...)",
            ["route", "stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ingest_documents = Counter(
            "zhiku_ingest_documents", "Documents ingested", ["collection"], registry=r
        )
        self.ingest_chunks = Counter("zhiku_ingest_chunks", "Chunks written", ["collection"], registry=r)
        self.ingest_errors = Counter("zhiku_ingest_errors", "Files that failed to ingest", registry=r)
        self.jobs = Counter("zhiku_ingest_jobs", "Background ingest jobs finished", ["state"], registry=r)
        self.llm_waiting = Gauge("zhiku_llm_queue_depth", "LLM requests admitted (running + waiting)", registry=r)
        self.llm_rejected = Counter("zhiku_llm_rejected", "LLM requests refused with 429/503", ["reason"], registry=r)

    def observe_stages(self, route: str, timings_ms: Mapping[str, float]) -> None:
        """Record an engine's `*_ms` timings as stage latencies."""
        for name, ms in timings_ms.items():
            if name.endswith("_ms") and name != "total_ms":
                self.stage.labels(route, name[:-3]).observe(ms / 1000.0)

    def ingested(self, collection: str, documents: int, chunks: int | None) -> None:
        self.ingest_documents.labels(collection).inc(documents)
        if chunks:
            self.ingest_chunks.labels(collection).inc(chunks)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request, streams included."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = method_label(scope.get("method", ""))
            self.metrics.requests.labels(method, template, status_label(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)
