"""Request limits: configured caps, media types, the bounded LLM queue, timeouts.

Bodies over `server.max_body_mb` get 413 (BodyLimitMiddleware). The LLM gate
admits at most `server.llm_queue` requests (running + waiting); more get 429
with Retry-After. An admitted request that cannot start generating within
`request_timeout_s` gets 503 with Retry-After. One generation runs at a time
per worker slot because local models use every core they are given.
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Callable, Iterable, TypeVar

import anyio
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zhiku.api.errors import Timeout, UnsupportedMedia, error_body
from zhiku.api.metrics import Metrics
from zhiku.engine.errors import InvalidRequest, Overloaded
from zhiku.engine.settings import Settings

T = TypeVar("T")


def check_text(settings: Settings, **texts: str | None) -> None:
    """422 when a text exceeds server.max_text_chars."""
    cap = settings.server.max_text_chars
    for name, text in texts.items():
        if text is not None and len(text) > cap:
            raise InvalidRequest(
                f"{name} is {len(text)} characters; the limit is {cap}", field=name, limit=cap
            )


def check_texts(settings: Settings, name: str, texts: Iterable[str]) -> None:
    """check_text over a list."""
    for i, text in enumerate(texts):
        check_text(settings, **{f"{name}[{i}]": text})


def check_media(content_type: str | None, allowed: tuple[str, ...]) -> None:
    """415 unless the body's media type is one of `allowed`."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in allowed:
        raise UnsupportedMedia(
            f"unsupported media type {media or 'none'!r}; send one of {list(allowed)}",
            allowed=list(allowed),
        )


class LLMGate:
    """A bounded queue in front of the generator: try-acquire or 429."""

    def __init__(self, capacity: int, workers: int, wait_s: float, metrics: Metrics) -> None:
        self.capacity = capacity
        self.wait_s = wait_s
        self._admitted = 0
        self._workers = anyio.Semaphore(workers)
        self._metrics = metrics

    @property
    def depth(self) -> int:
        return self._admitted

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a generation slot for the duration of the block."""
        if self._admitted >= self.capacity:
            self._metrics.llm_rejected.labels("queue_full").inc()
            raise Overloaded(
                f"the LLM queue is full ({self.capacity} requests); retry later",
                retry_after_s=2.0,
                capacity=self.capacity,
            )
        self._admitted += 1
        self._metrics.llm_waiting.set(self._admitted)
        try:
            with anyio.move_on_after(self.wait_s) as scope:
                await self._workers.acquire()
            if scope.cancelled_caught:
                self._metrics.llm_rejected.labels("wait_timeout").inc()
                raise Timeout(f"no LLM slot became free within {self.wait_s:g} s", retry_after_s=5.0)
            try:
                yield
            finally:
                self._workers.release()
        finally:
            self._admitted -= 1
            self._metrics.llm_waiting.set(self._admitted)


async def in_thread(fn: Callable[[], T], timeout_s: float) -> T:
    """Run blocking engine work in the threadpool with a deadline (503 past it).

    The thread itself cannot be killed; past the deadline the client gets its
    answer and the result is dropped.
    """
    with anyio.move_on_after(timeout_s) as scope:
        return await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)
    if scope.cancelled_caught:
        raise Timeout(f"the request took longer than {timeout_s:g} s")
    raise AssertionError("unreachable")  # pragma: no cover



class BodyLimitMiddleware:
    """413 in the one error shape for bodies over server.max_body_mb.

    A declared Content-Length over the limit is refused before the app runs; a
    chunked body is counted as it is read and stopped at the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = JSONResponse(self._body(), status_code=413)
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise StarletteHTTPException(413, self._body()["error"]["message"])
            return message

        await self.app(scope, counted, send)

    def _body(self) -> dict[str, Any]:
        mb = self.max_bytes / (1024 * 1024)
        return error_body("payload_too_large", f"request body over {mb:g} MB", {"limit_bytes": self.max_bytes})
