"""Annotated dependencies: the shared services, the caller, and scoped access.

All are `async def` on purpose: none blocks, and FastAPI would otherwise run
each sync dependency in the threadpool, one thread hop per dependency per request.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Iterator, TypeVar

import anyio
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from zhiku.api.jobs import IngestOutcome
from zhiku.api.limits import check_media
from zhiku.api.metrics import Metrics
from zhiku.api.schemas.stored import JobRecord, Scope
from zhiku.api.security import Principal
from zhiku.api.services import Services
from zhiku.api.sse import BlockingStream, open_stream
from zhiku.engine.errors import AlreadyExists, NotFound
from zhiku.engine.llm.cancel import Cancelled
from zhiku.engine.settings import Settings

if TYPE_CHECKING:
    from zhiku.ingest.pool import ParsePool
    from zhiku.engine.engine import Engine
    from zhiku.engine.kb import KnowledgeBase
    from zhiku.engine.llm.abilities import LLMService

_bearer = HTTPBearer(auto_error=False, description="An API key from `zhiku keys create`.")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same key, as a header.")


async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_principal(
    request: Request,
    services: ServicesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> Principal:
    """The caller, by the auth mode fixed at start (api.security.Auth)."""
    token = bearer.credentials if bearer is not None else header
    return services.auth.principal(token, request.scope.get("client"))


PrincipalDep = Annotated[Principal, Depends(get_principal)]

T = TypeVar("T")
ALL = "*"  # the collection name that only an all-collections key can reach


@dataclass(slots=True)
class Access:
    """The caller's only way to the services: every collection lookup checks scope first.

    Routes take this, never `Services`, so a route cannot reach a collection
    without naming the scope it needs (tests/test_api_scopes.py walks every
    route to prove it). Blocking work goes through `run`/`generate`/`stream`,
    which apply the request timeout and count the threads.
    """

    principal: Principal
    _services: Services
    _request: Request | None = None

    @property
    def settings(self) -> Settings:
        return self._services.settings

    @property
    def metrics(self) -> Metrics:
        return self._services.metrics

    def kb(self, collection: str, needed: Scope = "read") -> "KnowledgeBase":
        """An existing collection, for an action needing `needed`."""
        self.principal.authorize(collection, needed)
        return self._services.kb(collection)

    def writable_kb(self, collection: str) -> "KnowledgeBase":
        """A collection to write documents to; creating a missing one needs admin scope.

        One rule for every route: creating a collection is an admin action
        (POST /collections, or a first write by an admin key). A write key
        writing to a collection that does not exist gets 404.
        """
        self.principal.authorize(collection, "write")
        try:
            return self._services.kb(collection)
        except NotFound:
            if not self.principal.can(collection, "admin"):
                raise NotFound(
                    f"collection {collection!r} does not exist; an admin key creates it (POST /collections)",
                    collection=collection,
                ) from None
        return self._services.kb(collection, create=True)

    def create_kb(self, collection: str) -> "KnowledgeBase":
        """Create a collection (admin); AlreadyExists when it is there."""
        self.principal.authorize(collection, "admin")
        if collection in self._services.engine.list_collections():
            raise AlreadyExists(f"collection {collection!r} already exists", collection=collection)
        return self._services.kb(collection, create=True)

    def admin_engine(self, collection: str) -> "Engine":
        """The engine, for an admin operation on an existing `collection` (re-index)."""
        self.principal.authorize(collection, "admin")
        self._services.kb(collection)  # NotFound for a missing one
        return self._services.engine

    def drop(self, collection: str) -> None:
        """Delete a collection (admin)."""
        self.principal.authorize(collection, "admin")
        self._services.drop(collection)

    def collection_info(self, collection: str) -> dict[str, Any]:
        """A collection's stats (read)."""
        self.principal.authorize(collection, "read")
        return self._services.engine.collection_info(collection)

    def metrics_text(self) -> bytes:
        """The Prometheus metrics: admin over every collection, since labels name them all."""
        self.principal.authorize(ALL, "admin")
        return self._services.metrics.render()

    def visible(self) -> list[str]:
        """The collections this caller may read."""
        return self.principal.visible(self._services.engine.list_collections())

    def llm(self, collection: str | None, needed: Scope = "read") -> "LLMService":
        """LLM abilities, grounded in `collection` (scope-checked) or in nothing."""
        if collection is not None:
            self.principal.authorize(collection, needed)
        return self._services.llm(collection)

    def job(self, job_id: str) -> JobRecord:
        """A job's record, for a caller that may read its collection."""
        job = self._services.jobs.get(job_id)
        self.principal.authorize(job.collection, "read")
        return job

    def queue_job(self, collection: str) -> tuple[str, Path]:
        """A new job id and its upload folder, for a caller that may write `collection`."""
        self.principal.authorize(collection, "write")
        return self._services.jobs.upload_dir()

    def submit_job(self, job_id: str, collection: str, files: list[Path], work: Callable[[], IngestOutcome]) -> JobRecord:
        self.principal.authorize(collection, "write")
        return self._services.jobs.submit(job_id, collection, files, work)

    @property
    def parse_pool(self) -> "ParsePool":
        """The server's long-lived parse pool (inline uploads)."""
        return self._services.parse_pool

    def inline_dir(self) -> Path:
        """A folder for an inline upload (removed by the caller, swept at start if it is not)."""
        return self._services.jobs.inline_dir()

    async def run(self, fn: Callable[[], T]) -> T:
        """Blocking work under the request timeout (503 past it, or when too much is still running)."""
        return await self._services.work.run(fn)

    async def generate(self, fn: Callable[[], T]) -> T:
        """LLM work: an LLM slot (429 when the queue is full), held until generation really stops.

        A client that hangs up cancels the work (Starlette does not cancel a
        plain handler on disconnect, so a watcher polls for it).
        """
        ticket = await self._services.gate.acquire()
        outcome: list[tuple[bool, Any]] = []
        async with anyio.create_task_group() as group:

            async def work() -> None:
                try:
                    outcome.append((True, await self._services.work.run(fn, on_end=ticket.release)))
                except Exception as exc:  # re-raised below, outside the task group's ExceptionGroup
                    outcome.append((False, exc))
                finally:
                    group.cancel_scope.cancel()

            group.start_soon(work)
            if self._request is not None:
                group.start_soon(_cancel_on_disconnect, self._request, group.cancel_scope)
        if not outcome:
            raise Cancelled("the client disconnected")
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    async def stream(self, make: Callable[[], Iterator[Any]]) -> tuple[Any, BlockingStream, contextlib.AsyncExitStack]:
        """Start a generation stream under an LLM slot; see api.sse.open_stream."""
        services = self._services
        return await open_stream(make, services.work, services.settings.server.request_timeout_s, services.gate)


async def _cancel_on_disconnect(request: Request, scope: anyio.CancelScope) -> None:
    while not await request.is_disconnected():
        await anyio.sleep(_DISCONNECT_POLL_S)
    scope.cancel()


_DISCONNECT_POLL_S = 0.25


async def get_access(request: Request, principal: PrincipalDep, services: ServicesDep) -> Access:
    return Access(principal, services, request)


AccessDep = Annotated[Access, Depends(get_access)]


async def require_json(request: Request) -> None:
    """415 for a request body that is not JSON (router-level dependency)."""
    if request.method in ("POST", "PUT", "PATCH"):
        check_media(request.headers.get("content-type"), ("application/json",))


JSON_ONLY = [Depends(require_json)]
