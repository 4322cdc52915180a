"""Server-sent events: the wire format, and streaming a blocking iterator under the LLM gate."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from typing import Any, AsyncIterator, Callable, Iterator

from fastapi.responses import StreamingResponse

from zhiku.api.errors import Timeout, error_body, status_for
from zhiku.api.limits import LLMGate, Ticket, Work
from zhiku.engine.errors import ZhikuError

log = logging.getLogger("zhiku.api")
SSE_MEDIA = "text/event-stream"
# The schema of one event (OpenAPI's reading of text/event-stream): its `data` is a JSON line.
SSE_EVENT_SCHEMA = {
    "type": "object",
    "description": "one server-sent event; `data` holds JSON",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}},
    "required": ["data"],
}
SSE_DOC = {"content": {SSE_MEDIA: {"schema": SSE_EVENT_SCHEMA}}}
_DONE = object()


def sse_event(event: str | None, data: Any) -> bytes:
    """One event in SSE wire format; data is JSON (one line, so no escaping issues)."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode("utf-8")


class BlockingStream:
    """A blocking iterator made and pulled in counted worker threads, each pull under a deadline.

    It holds one LLM ticket for its whole life. When the stream ends early
    (timeout, client gone) while a pull is still running, that pull is asked
    to stop and its thread closes the iterator and frees the ticket when it
    ends, so the slot is free only once generation has stopped.
    """

    def __init__(self, make: Callable[[], Iterator[Any]], work: Work, timeout_s: float, ticket: Ticket) -> None:
        self._make = make
        self._items: Iterator[Any] | None = None
        self._work = work
        self._timeout_s = timeout_s
        self._ticket = ticket
        self._lock = threading.Lock()
        self._pulling = False
        self._closed = False
        self._pulled = False

    def _pull(self) -> Any:
        if self._items is None:
            self._items = self._make()
        return next(self._items, _DONE)

    def _pull_ended(self) -> None:
        with self._lock:
            self._pulling = False
            finish = self._closed
        if finish:
            self._finish()

    async def next(self) -> Any:
        """The next item, or `StopAsyncIteration` at the end; Timeout past the deadline."""
        with self._lock:
            self._pulling = True
        try:
            item = await self._work.run(
                self._pull, timeout_s=self._timeout_s, on_end=self._pull_ended, admit=not self._pulled
            )
        except Timeout:
            raise Timeout(f"no output within {self._timeout_s:g} s") from None
        self._pulled = True
        if item is _DONE:
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        """End the stream: now, or when the pull still running ends."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            finish = not self._pulling
        if finish:
            self._finish()

    def _finish(self) -> None:
        close = getattr(self._items, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()
        self._ticket.release()


async def open_stream(
    make: Callable[[], Iterator[Any]], work: Work, timeout_s: float, gate: LLMGate
) -> tuple[Any, BlockingStream, contextlib.AsyncExitStack]:
    """Take an LLM ticket, start the stream and pull its first item.

    Errors up to the first item (bad request, unknown collection, full queue)
    raise here, so they still become a proper HTTP status, not a 200 stream.
    """
    stack = contextlib.AsyncExitStack()
    stream = BlockingStream(make, work, timeout_s, await gate.acquire())
    stack.callback(stream.close)
    try:
        first = await stream.next()
    except BaseException:
        await stack.aclose()
        raise
    return first, stream, stack


def sse_response(
    first: Any,
    stream: BlockingStream,
    stack: contextlib.AsyncExitStack,
    encode: Callable[[Any], list[bytes]],
    on_error: Callable[[ZhikuError], list[bytes]] | None = None,
) -> StreamingResponse:
    """Stream `first` and the rest as encoded events; always releases the slot."""

    async def body() -> AsyncIterator[bytes]:
        try:
            for chunk in encode(first):
                yield chunk
            while True:
                try:
                    item = await stream.next()
                except StopAsyncIteration:
                    break
                for chunk in encode(item):
                    yield chunk
        except ZhikuError as exc:
            # Headers are gone: report the error as the stream's last event.
            for chunk in (on_error or _error_event)(exc):
                yield chunk
        except Exception:
            log.exception("stream failed")
            for chunk in (on_error or _error_event)(ZhikuError("internal server error")):
                yield chunk
        finally:
            await stack.aclose()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return _ClosingStreamingResponse(body(), media_type=SSE_MEDIA, headers=headers)


class _ClosingStreamingResponse(StreamingResponse):
    """A StreamingResponse that closes its body when sending stops.

    When the client hangs up, Starlette stops iterating the body (a send
    raises) without closing it, so its `finally` (which frees the LLM slot)
    would wait for garbage collection. Closing it here frees the slot now.
    """

    async def stream_response(self, send: Any) -> None:
        try:
            await super().stream_response(send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()


def _error_event(exc: ZhikuError) -> list[bytes]:
    body = error_body(exc.code, exc.message, exc.details)
    body["error"]["status"] = status_for(exc)
    return [sse_event("error", body)]
