"""Collections: create, list (with stats), get, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path as PathParam

from zhiku.api.deps import JSON_ONLY, Access, AccessDep
from zhiku.api.schemas.requests import CollectionCreate
from zhiku.api.schemas.responses import CollectionList, CollectionOut, Deleted
from zhiku.engine.names import COLLECTION_NAME_PATTERN

router = APIRouter(tags=["collections"], dependencies=JSON_ONLY)
Name = Annotated[str, PathParam(pattern=COLLECTION_NAME_PATTERN)]


def collection_out(access: Access, name: str) -> CollectionOut:
    """Stats of one collection: documents, chunks and the embedding model."""
    info: dict[str, Any] = access.collection_info(name)
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
    """Create an empty collection (admin scope; 409 if it exists)."""

    def run() -> CollectionOut:
        access.create_kb(body.name)
        return collection_out(access, body.name)

    return await access.run(run)


@router.get("/collections", response_model=CollectionList)
async def list_collections(access: AccessDep) -> CollectionList:
    """The collections this key can read, with their stats."""
    return await access.run(lambda: CollectionList(collections=[collection_out(access, n) for n in access.visible()]))


@router.get("/collections/{name}", response_model=CollectionOut)
async def get_collection(name: Name, access: AccessDep) -> CollectionOut:
    """One collection's stats."""
    access.principal.authorize(name, "read")
    return await access.run(lambda: collection_out(access, name))


@router.delete("/collections/{name}", response_model=Deleted)
async def delete_collection(name: Name, access: AccessDep) -> Deleted:
    """Delete a collection and everything in it."""
    access.principal.authorize(name, "admin")
    await access.run(lambda: access.drop(name))
    return Deleted(deleted=name)
