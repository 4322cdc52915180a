"""Request limits: configured caps, media types, the bounded LLM queue, timeouts.

Bodies over `server.max_body_mb` get 413 (BodyLimitMiddleware). The LLM gate
admits at most `server.llm_queue` requests (running + waiting); more get 429
with Retry-After. An admitted request that cannot start generating within
`request_timeout_s` gets 503 with Retry-After. One generation runs at a time
per worker slot because local models use every core they are given.

All blocking work runs through `Work.run`: one place applies the request
timeout, counts threads until they really end (timed-out ones included; 503
past `server.max_running_work`), and asks generation to stop on timeout or
disconnect. An LLM ticket stays taken until its generation has stopped, so
`llm_queue` bounds the generations running, not only the requests waiting.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterable, TypeVar

import anyio
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zhiku.api.errors import Busy, Timeout, UnsupportedMedia, error_body
from zhiku.api.metrics import Metrics
from zhiku.engine.errors import InvalidRequest, Overloaded
from zhiku.engine.llm.cancel import cancellable
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


class Ticket:
    """One admitted LLM request; `release` (idempotent, any thread) frees its place."""

    def __init__(self, gate: "LLMGate") -> None:
        self._gate = gate
        self.running = False
        self._released = False

    def release(self) -> None:
        self._gate._release(self)


class LLMGate:
    """A bounded queue in front of the generator: try-acquire or 429.

    Thread-safe on purpose: a timed-out generation's thread keeps its place
    until it really stops (it calls `Ticket.release` when it ends), so
    `capacity` bounds the generations running, not just the requests waiting.
    """

    _POLL_S = 0.01

    def __init__(self, capacity: int, workers: int, wait_s: float, metrics: Metrics) -> None:
        self.capacity = capacity
        self.workers = workers
        self.wait_s = wait_s
        self._admitted = 0
        self._running = 0
        self._lock = threading.Lock()
        self._metrics = metrics

    @property
    def depth(self) -> int:
        """Requests admitted: waiting, generating, or stopping after a timeout."""
        return self._admitted

    async def acquire(self) -> Ticket:
        """A place in the queue, then a generation slot; 429 when full, 503 past `wait_s`."""
        with self._lock:
            if self._admitted >= self.capacity:
                self._metrics.llm_rejected.labels("queue_full").inc()
                raise Overloaded(
                    f"the LLM queue is full ({self.capacity} requests); retry later",
                    retry_after_s=2.0,
                    capacity=self.capacity,
                )
            self._admitted += 1
            self._metrics.llm_waiting.set(self._admitted)
        ticket = Ticket(self)
        try:
            deadline = time.monotonic() + self.wait_s
            # Slots are freed from worker threads, so waiting polls (at most `capacity` waiters).
            while not self._start(ticket):
                if time.monotonic() >= deadline:
                    self._metrics.llm_rejected.labels("wait_timeout").inc()
                    raise Timeout(f"no LLM slot became free within {self.wait_s:g} s", retry_after_s=5.0)
                await anyio.sleep(self._POLL_S)
        except BaseException:
            ticket.release()
            raise
        return ticket

    def _start(self, ticket: Ticket) -> bool:
        with self._lock:
            if self._running >= self.workers:
                return False
            self._running += 1
            ticket.running = True
            return True

    def _release(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket._released:
                return
            ticket._released = True
            self._running -= ticket.running
            self._admitted -= 1
            self._metrics.llm_waiting.set(self._admitted)


class Work:
    """Blocking engine work in the threadpool, under a deadline, counted until it really ends.

    A thread cannot be killed: past its deadline anyio abandons it and frees
    its threadpool token, so without a count abandoned threads pile up
    unseen. Here every thread is counted from start to its real end, and past
    `cap` still-running threads new work is refused with 503. On timeout or
    cancellation (the client left) the work is asked to stop
    (engine.llm.cancel: generation stops at its next token) and the caller
    answers at once; `on_end` runs when the thread really ends, which is how
    an LLM slot stays taken until the model has stopped.
    """

    def __init__(self, cap: int, timeout_s: float) -> None:
        self.cap = cap
        self.timeout_s = timeout_s
        self._running = 0
        self._lock = threading.Lock()

    @property
    def running(self) -> int:
        """Threads started here that have not returned yet, abandoned ones included."""
        return self._running

    def _admit(self, force: bool) -> None:
        with self._lock:
            if self._running >= self.cap and not force:
                raise Busy(f"the server is busy ({self._running} requests still running); retry later")
            self._running += 1

    def _done(self) -> None:
        with self._lock:
            self._running -= 1

    async def run(
        self,
        fn: Callable[[], T],
        timeout_s: float | None = None,
        on_end: Callable[[], None] | None = None,
        admit: bool = True,
    ) -> T:
        """fn() in a worker thread; 503 past the deadline (the request timeout unless given).

        `on_end` runs exactly once, when the thread ends (or at once if it
        never starts). `admit=False` counts the thread without refusing it
        (the rest of a stream already started).
        """
        deadline = self.timeout_s if timeout_s is None else timeout_s
        try:
            self._admit(force=not admit)
        except BaseException:
            if on_end is not None:
                on_end()
            raise
        stop = threading.Event()
        # Cancelled before a worker thread picked it up, `call` may never run:
        # then whoever sees that first (this coroutine) does the ending.
        state = {"started": False, "abandoned": False}
        lock = threading.Lock()

        def end() -> None:
            self._done()
            if on_end is not None:
                on_end()

        def call() -> T:
            with lock:
                if state["abandoned"]:
                    raise Timeout("abandoned before it started")
                state["started"] = True
            try:
                with cancellable(stop):
                    return fn()
            finally:
                end()

        def abandon() -> None:
            stop.set()
            with lock:
                never_started = not state["started"] and not state["abandoned"]
                state["abandoned"] = True
            if never_started:
                end()

        try:
            with anyio.move_on_after(deadline) as scope:
                return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except BaseException:  # fn raised, or the request was cancelled (client gone)
            abandon()
            raise
        abandon()
        if scope.cancelled_caught:
            raise Timeout(f"the request took longer than {deadline:g} s")
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
