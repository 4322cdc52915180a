"""Async variants of blocking engine calls, derived, never copied.

`KnowledgeBase.asearch = run_in_thread(KnowledgeBase.search)` gives an async
method with the same signature whose body is the sync one, run in a worker
thread. `aiterate` turns a blocking iterator (token streams) into an async one.
"""

from __future__ import annotations

import functools
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, ParamSpec, TypeVar

import anyio

P = ParamSpec("P")
T = TypeVar("T")
_DONE = object()


def run_in_thread(fn: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """An async twin of a blocking function or method (same arguments)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    wrapper.__doc__ = f"Async variant of `{fn.__name__}` (runs it in a worker thread)."
    return wrapper


async def aiterate(iterator: Iterator[T]) -> AsyncIterator[T]:
    """Pull a blocking iterator one item at a time in worker threads."""
    while True:
        item: Any = await anyio.to_thread.run_sync(next, iterator, _DONE)
        if item is _DONE:
            return
        yield item


def aiterate_call(fn: Callable[P, Iterator[T]]) -> Callable[P, AsyncIterator[T]]:
    """An async-iterator twin of a function returning a blocking iterator."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        return aiterate(fn(*args, **kwargs))

    return wrapper
