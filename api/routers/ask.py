"""POST /ask: a grounded answer with checked citations, whole or as server-sent events.

Streaming sends, in order: one `references` event (the numbered sources the
model sees), `token` events (`{"text": ...}`), then one `done` event with the
final answer, its validated citations and the timings (the AskResponse shape).
An error after the stream started arrives as an `error` event.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from zhiku.api.deps import JSON_ONLY, AccessDep
from zhiku.api.limits import check_text, check_texts
from zhiku.api.routers._convert import answer_out, sources_out
from zhiku.api.schemas.requests import AskRequest
from zhiku.api.schemas.responses import AskResponse, ErrorResponse
from zhiku.api.sse import SSE_DOC, sse_event, sse_response

router = APIRouter(tags=["ask"], dependencies=JSON_ONLY)

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: SSE_DOC,
    429: {"model": ErrorResponse, "description": "LLM queue full (Retry-After)"},
    503: {"model": ErrorResponse, "description": "timed out or model unavailable (Retry-After)"},
}


def encode_ask_event(event: Any) -> list[bytes]:
    """One engine AskEvent as SSE bytes."""
    if event.type == "sources":
        return [sse_event("references", {"sources": [s.model_dump() for s in sources_out(event.data)]})]
    if event.type == "token":
        return [sse_event("token", {"text": event.data})]
    return [sse_event("done", answer_out(event.data).model_dump())]


@router.post("/ask", response_model=AskResponse, responses=_RESPONSES)
async def ask(body: AskRequest, access: AccessDep) -> Response | AskResponse:
    """Answer from a collection; `stream: true` answers as text/event-stream."""
    settings = access.settings
    check_text(settings, question=body.question)
    check_texts(settings, "history", (t.content for t in body.history))
    access.principal.authorize(body.collection, "read")
    history = [t.model_dump() for t in body.history]

    def chain():  # type: ignore[no-untyped-def]
        return access.llm(body.collection)

    if body.stream:

        def start():  # type: ignore[no-untyped-def]
            return chain().ask_stream(body.question, history, filters=body.filters, top_k=body.top_k)

        first, stream, stack = await access.stream(start)
        return sse_response(first, stream, stack, _observing(access.metrics, encode_ask_event))
    answer = await access.generate(lambda: chain().ask(body.question, history, filters=body.filters, top_k=body.top_k))
    access.metrics.observe_stages("/ask", answer.timings)
    return answer_out(answer)


def _observing(metrics: Any, encode: Any) -> Any:
    def wrapped(event: Any) -> list[bytes]:
        if event.type == "done":
            metrics.observe_stages("/ask", event.data.timings)
        return encode(event)

    return wrapped

