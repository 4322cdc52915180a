"""One router per resource; `ROUTERS` is what the app factory mounts."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from zhiku.api.routers import abilities, admin, ask, collections, documents, health, openai_compat, search, ui

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    search.router,
    ask.router,
    documents.router,
    collections.router,
    abilities.router,
    openai_compat.router,
    ui.router,
    admin.router,
)

# Bodies parsed by hand (POST /documents takes JSON or multipart), published in OpenAPI.
BODY_SCHEMAS: tuple[type[BaseModel], ...] = documents.BODY_SCHEMAS
