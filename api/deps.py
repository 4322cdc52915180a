"""Annotated dependencies: the shared services, the caller, and scoped access.

All are `async def` on purpose: none blocks, and FastAPI would otherwise run
each sync dependency in the threadpool, one thread hop per dependency per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from zhiku.api.errors import Unauthorized
from zhiku.api.limits import check_media
from zhiku.api.schemas.stored import Scope
from zhiku.api.security import OPEN_ACCESS, Principal
from zhiku.api.services import Services
from zhiku.engine.settings import Settings

if TYPE_CHECKING:
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
    services: ServicesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> Principal:
    """The caller: open access while no keys exist, else the key presented."""
    if not services.keys.enabled:
        return OPEN_ACCESS
    token = bearer.credentials if bearer is not None else header
    if not token:
        raise Unauthorized("an API key is required (Authorization: Bearer zk_...)")
    record = services.keys.verify(token)
    if record is None:
        raise Unauthorized("unknown or revoked API key")
    return Principal.of(record)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


@dataclass(slots=True)
class Access:
    """The caller's view of the services: every lookup checks scope and collection."""

    principal: Principal
    services: Services

    def kb(self, collection: str, needed: Scope = "read", create: bool = False) -> "KnowledgeBase":
        self.principal.authorize(collection, needed)
        return self.services.kb(collection, create=create)

    def llm(self, collection: str | None, needed: Scope = "read") -> "LLMService":
        if collection is not None:
            self.principal.authorize(collection, needed)
        return self.services.llm(collection)


async def get_access(principal: PrincipalDep, services: ServicesDep) -> Access:
    return Access(principal, services)


AccessDep = Annotated[Access, Depends(get_access)]


async def require_json(request: Request) -> None:
    """415 for a request body that is not JSON (router-level dependency)."""
    if request.method in ("POST", "PUT", "PATCH"):
        check_media(request.headers.get("content-type"), ("application/json",))


JSON_ONLY = [Depends(require_json)]
