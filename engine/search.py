"""Search orchestration for one collection: validate, run the legs, fuse, fetch payloads.

`SearchRequest.resolve` is the one place a search's options are defaulted and
checked; `Searcher.run` runs the dense and BM25 legs (overlapped in hybrid
mode), fuses them with a pure function from `engine/fusion.py`, and reads
payloads once, for the fused top_k.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from zhiku.engine.bm25 import encode_query
from zhiku.engine.embedders.base import Embedder
from zhiku.engine.errors import InvalidRequest
from zhiku.engine.filters import Condition, parse_filters
from zhiku.engine.fusion import FUSIONS
from zhiku.engine.settings import RetrievalSettings
from zhiku.engine.stores.base import BatchedLegs, VectorStore
from zhiku.engine.tokenize import tokenize
from zhiku.engine.types import Hit, ScoredPoint

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "bm25")
Timings = dict[str, float]


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """A search with every option resolved against the settings and checked."""

    query: str
    top_k: int
    mode: Mode
    conditions: tuple[Condition, ...]
    fusion: str
    alpha: float
    rrf_k: int
    prefetch: int

    @classmethod
    def resolve(
        cls,
        settings: RetrievalSettings,
        query: str,
        top_k: int | None = None,
        mode: str | None = None,
        filters: Mapping[str, Any] | None = None,
        fusion: str | None = None,
        alpha: float | None = None,
    ) -> "SearchRequest":
        """Defaults from the settings; InvalidRequest for anything out of range."""
        top_k = settings.top_k if top_k is None else top_k
        mode = mode or settings.mode
        fusion = fusion or settings.fusion
        alpha = settings.alpha if alpha is None else alpha
        if not isinstance(query, str) or not query.strip():
            raise InvalidRequest("query must be a non-empty string", field="query")
        if not 1 <= top_k <= settings.max_top_k:
            raise InvalidRequest(
                f"top_k must be between 1 and {settings.max_top_k}", field="top_k", limit=settings.max_top_k
            )
        if mode not in MODES:
            raise InvalidRequest(f"mode must be one of {MODES}", field="mode")
        if fusion not in FUSIONS:
            raise InvalidRequest(f"fusion must be one of {sorted(FUSIONS)}", field="fusion")
        if not 0.0 <= alpha <= 1.0:
            raise InvalidRequest("alpha must be between 0 and 1", field="alpha")
        return cls(
            query=query,
            top_k=top_k,
            mode=mode,  # type: ignore[arg-type]
            conditions=tuple(parse_filters(filters)),
            fusion=fusion,
            alpha=alpha,
            rrf_k=settings.rrf_k,
            prefetch=settings.prefetch,
        )

    def fusion_options(self) -> dict[str, Any]:
        """The keyword arguments this request's fusion function takes."""
        if self.fusion == "rrf":
            return {"k": self.rrf_k}
        if self.fusion == "convex":
            return {"alpha": self.alpha}
        return {}


class Searcher:
    """Runs searches of one collection over a store and an embedder."""

    def __init__(self, store: VectorStore, embedder: Embedder, collection: str, leg_pool: Executor) -> None:
        self.store = store
        self.embedder = embedder
        self.collection = collection
        # Runs the dense leg of a hybrid search beside the BM25 leg.
        self.leg_pool = leg_pool
        # A remote store takes both legs in one request: one round trip.
        self.batched = isinstance(store, BatchedLegs)

    def run(self, request: SearchRequest) -> tuple[list[Hit], Timings]:
        """Hits best first, and per-stage timings in milliseconds."""
        r = request
        limit = max(r.prefetch, r.top_k) if r.mode == "hybrid" else r.top_k
        timings: Timings = {}
        # Fusion needs only ids and scores: hybrid legs skip payloads, and the
        # store reads them once, for the fused top_k.
        with_payload = r.mode != "hybrid"
        legs: dict[str, list[ScoredPoint]] = {"dense": [], "bm25": []}
        t0 = time.perf_counter()

        def dense_leg() -> None:
            vector = self.embedder.embed_query(r.query)
            t1 = time.perf_counter()
            timings["embed_ms"] = (t1 - t0) * 1000
            legs["dense"] = self.store.query_dense(self.collection, vector, limit, r.conditions, with_payload)
            timings["dense_ms"] = (time.perf_counter() - t1) * 1000

        def bm25_leg() -> None:
            t2 = time.perf_counter()
            terms = tokenize(r.query)
            if terms:
                legs["bm25"] = self.store.query_sparse(
                    self.collection, encode_query(terms), limit, r.conditions, with_payload
                )
            timings["bm25_ms"] = (time.perf_counter() - t2) * 1000

        if r.mode != "hybrid":
            (dense_leg if r.mode == "dense" else bm25_leg)()
            hits = [Hit.from_payload(p.payload, p.score) for p in legs[r.mode][: r.top_k]]
            timings["total_ms"] = (time.perf_counter() - t0) * 1000
            return hits, timings
        if self.batched:
            self._both_legs(r, limit, legs, timings, t0)
        else:
            # The legs overlap: the model and the engine release the GIL.
            pending = self.leg_pool.submit(dense_leg)
            bm25_leg()
            pending.result()
        t3 = time.perf_counter()
        ranked = FUSIONS[r.fusion](
            [(p.id, p.score) for p in legs["dense"]],
            [(p.id, p.score) for p in legs["bm25"]],
            r.top_k,
            **r.fusion_options(),
        )
        timings["fusion_ms"] = (time.perf_counter() - t3) * 1000
        t4 = time.perf_counter()
        payloads = dict(self.store.retrieve(self.collection, [pid for pid, _ in ranked]))
        timings["fetch_ms"] = (time.perf_counter() - t4) * 1000
        timings["total_ms"] = (time.perf_counter() - t0) * 1000
        # A point deleted between the legs and the fetch is simply dropped.
        hits = [Hit.from_payload(payloads[pid], score) for pid, score in ranked if pid in payloads]
        return hits, timings

    def _both_legs(
        self, r: SearchRequest, limit: int, legs: dict[str, list[ScoredPoint]], timings: Timings, t0: float
    ) -> None:
        """Hybrid legs from a BatchedLegs store: embed, then one request for both."""
        vector = self.embedder.embed_query(r.query)
        t1 = time.perf_counter()
        timings["embed_ms"] = (t1 - t0) * 1000
        terms = tokenize(r.query)
        sparse = encode_query(terms) if terms else None
        legs["dense"], legs["bm25"] = self.store.query_legs(  # type: ignore[attr-defined]
            self.collection, vector, sparse, limit, r.conditions, False
        )
        # Both legs ran in the same request: each took that round trip.
        timings["dense_ms"] = timings["bm25_ms"] = (time.perf_counter() - t1) * 1000
