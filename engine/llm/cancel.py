"""Cooperative cancellation of generation: a request that times out or loses its client stops the model.

A thread cannot be killed, so the caller hands the worker thread an Event
(`cancellable(event)`) and `Generator.stream` checks it between pieces: once
set, the next piece raises `Cancelled` and the backend's token loop is closed.
Whoever holds a slot for that work waits for the thread to end before freeing
it, so a bounded queue bounds the generations really running.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from typing import Iterator

from zhiku.engine.errors import ZhikuError

_CURRENT: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("zhiku_cancel", default=None)


class Cancelled(ZhikuError):
    """The work was cancelled by its caller (timeout or disconnect)."""

    code = "cancelled"


@contextlib.contextmanager
def cancellable(event: threading.Event) -> Iterator[None]:
    """Work in this block (in this thread) stops at its next check once `event` is set."""
    token = _CURRENT.set(event)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def check_cancelled() -> None:
    """Raise Cancelled when the current work's event is set; a no-op outside `cancellable`."""
    event = _CURRENT.get()
    if event is not None and event.is_set():
        raise Cancelled("generation cancelled: the request timed out or its client left")
