"""Retries with backoff for the remote store: transient failures only, never a 4xx.

The rule, in steps:

1. A failure is transient when the same request may well succeed a moment
   later: the server could not be reached (connection refused or reset, DNS),
   the request timed out, the server answered 502/503/504 (a node restarting,
   a shard moving, a proxy in between), or gRPC said UNAVAILABLE or
   DEADLINE_EXCEEDED.
2. Anything else is raised at once. A 4xx says the request itself is wrong
   (or, for 409, already done; for 429, the caller should slow down, which a
   replica's own retry loop would not), so repeating it cannot help; a 500 is
   a server bug, not a hiccup.
3. A transient failure is retried up to `retries` times, sleeping
   base * 2**n seconds (capped, with jitter so replicas that failed together
   do not retry together).

Repeating a request is safe because every store operation zhiku issues is
idempotent: upserts carry their point ids, deletes name what they delete, and
a collection create that loses a race is recognised as such (ServerStore).
"""

from __future__ import annotations

import functools
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import httpx

log = logging.getLogger(__name__)
T = TypeVar("T")

# Statuses a server or proxy returns while it is briefly unable to serve.
TRANSIENT_STATUS = frozenset({502, 503, 504})
# gRPC's equivalents (grpc.StatusCode names, so grpc need not be imported here).
TRANSIENT_GRPC = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` is a failure the same request may not meet again (see module doc)."""
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(exc, UnexpectedResponse):
        return exc.status_code in TRANSIENT_STATUS
    if isinstance(exc, ResponseHandlingException):  # the REST client wraps httpx errors
        return is_transient(exc.source)
    if isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError)):
        return True
    code = getattr(exc, "code", None)  # grpc.RpcError
    if callable(code):
        try:
            return getattr(code(), "name", None) in TRANSIENT_GRPC
        except Exception:  # an object whose code() needs arguments is not a gRPC error
            return False
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried."""

    retries: int = 3
    base_s: float = 0.2
    max_s: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    jitter: Callable[[], float] = field(default=random.random, repr=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (0-based): half fixed, half jitter."""
        ceiling = min(self.max_s, self.base_s * 2**attempt)
        return ceiling * (0.5 + 0.5 * self.jitter())

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """fn(*args, **kwargs), retried on transient failures; the last failure is raised."""
        for attempt in range(self.retries + 1):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if attempt == self.retries or not is_transient(exc):
                    raise
                wait = self.delay(attempt)
                log.warning(
                    "qdrant %s failed (%s: %s); retry %d/%d in %.2fs",
                    getattr(fn, "__name__", "call"), type(exc).__name__, exc, attempt + 1, self.retries, wait,
                )
                self.sleep(wait)
        raise AssertionError("unreachable")  # the loop returns or raises


class RetryingClient:
    """A client proxy whose every method call runs under a RetryPolicy.

    Wrapping the client, rather than each call site, means a store method added
    later is retried too without anyone remembering to.
    """

    def __init__(self, client: Any, policy: RetryPolicy) -> None:
        self._client = client
        self._policy = policy

    @property
    def wrapped(self) -> Any:
        """The client underneath (for calls that must not be retried)."""
        return self._client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def retried(*args: Any, **kwargs: Any) -> Any:
            return self._policy.call(attr, *args, **kwargs)

        return retried
