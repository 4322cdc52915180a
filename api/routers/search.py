"""POST /search: hybrid, dense or BM25 search of one collection."""

from __future__ import annotations

from fastapi import APIRouter

from zhiku.api.deps import JSON_ONLY, AccessDep
from zhiku.api.limits import check_text
from zhiku.api.routers._convert import hit_out
from zhiku.api.schemas.requests import SearchRequest
from zhiku.api.schemas.responses import SearchResponse

router = APIRouter(tags=["search"], dependencies=JSON_ONLY)


@router.post("/search", response_model=SearchResponse)
async def search(body: SearchRequest, access: AccessDep) -> SearchResponse:
    """Search a collection; `debug: true` adds per-stage timings in milliseconds."""
    check_text(access.settings, query=body.query)
    # top_k is checked once, by the engine (SearchRequest.resolve), against retrieval.max_top_k.
    access.principal.authorize(body.collection, "read")

    def run():  # type: ignore[no-untyped-def]
        kb = access.kb(body.collection)
        return kb.search_debug(body.query, body.top_k, body.mode, body.filters, body.fusion, body.alpha)

    hits, timings = await access.run(run)
    access.metrics.observe_stages("/search", timings)
    return SearchResponse(
        collection=body.collection,
        hits=[hit_out(h) for h in hits],
        timings_ms=timings if body.debug else None,
    )
