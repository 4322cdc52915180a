"""Server-sent events: the wire format, and streaming a blocking iterator under the LLM gate."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any, AsyncIterator, Callable, Iterator

import anyio
from fastapi.responses import StreamingResponse

from zhiku.api.errors import Timeout, error_body, status_for
from zhiku.engine.errors import ZhikuError

log = logging.getLogger("zhiku.api")
SSE_MEDIA = "text/event-stream"
SSE_DOC = {"content": {SSE_MEDIA: {"schema": {"type": "string", "description": "server-sent events"}}}}
_DONE = object()


def sse_event(event: str | None, data: Any) -> bytes:
    """One event in SSE wire format; data is JSON (one line, so no escaping issues)."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode("utf-8")


class BlockingStream:
    """A blocking iterator pulled in worker threads, each item under a deadline."""

    def __init__(self, items: Iterator[Any], timeout_s: float) -> None:
        self._items = items
        self._timeout_s = timeout_s

    async def next(self) -> Any:
        """The next item, or `StopAsyncIteration` at the end; Timeout past the deadline."""
        with anyio.move_on_after(self._timeout_s) as scope:
            item = await anyio.to_thread.run_sync(next, self._items, _DONE, abandon_on_cancel=True)
        if scope.cancelled_caught:
            raise Timeout(f"no output within {self._timeout_s:g} s")
        if item is _DONE:
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        close = getattr(self._items, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()


async def open_stream(
    make: Callable[[], Iterator[Any]],
    timeout_s: float,
    slot: contextlib.AbstractAsyncContextManager[None],
) -> tuple[Any, BlockingStream, contextlib.AsyncExitStack]:
    """Take an LLM slot, start the stream and pull its first item.

    Errors up to the first item (bad request, unknown collection, full queue)
    raise here, so they still become a proper HTTP status, not a 200 stream.
    """
    stack = contextlib.AsyncExitStack()
    await stack.enter_async_context(slot)
    try:
        stream = BlockingStream(await anyio.to_thread.run_sync(make), timeout_s)
        stack.callback(stream.close)
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
    return StreamingResponse(body(), media_type=SSE_MEDIA, headers=headers)


def _error_event(exc: ZhikuError) -> list[bytes]:
    body = error_body(exc.code, exc.message, exc.details)
    body["error"]["status"] = status_for(exc)
    return [sse_event("error", body)]
