"""Collections: create, list (with stats), get, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path as PathParam

from zhiku.api.deps import JSON_ONLY, AccessDep
from zhiku.api.limits import in_thread
from zhiku.api.schemas.requests import CollectionCreate
from zhiku.api.schemas.responses import CollectionList, CollectionOut, Deleted
from zhiku.api.services import Services
from zhiku.engine.errors import AlreadyExists
from zhiku.engine.names import COLLECTION_NAME_PATTERN

router = APIRouter(tags=["collections"], dependencies=JSON_ONLY)
Name = Annotated[str, PathParam(pattern=COLLECTION_NAME_PATTERN)]


def collection_out(services: Services, name: str) -> CollectionOut:
    """Stats of one collection: documents, chunks and the embedding model."""
    info: dict[str, Any] = services.engine.collection_info(name)
    manifest = info.get("manifest") or {}
    embed = manifest.get("embedder") or {}
    return CollectionOut(
        name=name,
        documents=info["documents"],
        chunks=info["chunks"],
        model=str(embed.get("model_id", "")),
        dim=embed.get("dim"),
        manifest=manifest,
    )


@router.post("/collections", status_code=201, response_model=CollectionOut)
async def create_collection(body: CollectionCreate, access: AccessDep) -> CollectionOut:
    """Create an empty collection (409 if it exists)."""
    services = access.services
    access.principal.authorize(body.name, "admin")

    def run() -> CollectionOut:
        if body.name in services.engine.list_collections():
            raise AlreadyExists(f"collection {body.name!r} already exists", collection=body.name)
        services.kb(body.name, create=True)
        return collection_out(services, body.name)

    return await in_thread(run, services.settings.server.request_timeout_s)


@router.get("/collections", response_model=CollectionList)
async def list_collections(access: AccessDep) -> CollectionList:
    """The collections this key can read, with their stats."""
    services = access.services

    def run() -> CollectionList:
        names = access.principal.visible(services.engine.list_collections())
        return CollectionList(collections=[collection_out(services, n) for n in names])

    return await in_thread(run, services.settings.server.request_timeout_s)


@router.get("/collections/{name}", response_model=CollectionOut)
async def get_collection(name: Name, access: AccessDep) -> CollectionOut:
    """One collection's stats."""
    access.principal.authorize(name, "read")
    services = access.services
    return await in_thread(lambda: collection_out(services, name), services.settings.server.request_timeout_s)


@router.delete("/collections/{name}", response_model=Deleted)
async def delete_collection(name: Name, access: AccessDep) -> Deleted:
    """Delete a collection and everything in it."""
    access.principal.authorize(name, "admin")
    services = access.services
    await in_thread(lambda: services.drop(name), services.settings.server.request_timeout_s)
    return Deleted(deleted=name)
