"""Documents: add (JSON text or multipart files; big uploads become jobs), list, get, delete."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from zhiku.api.deps import Access, AccessDep
from zhiku.api.jobs import IngestOutcome, safe_filename
from zhiku.api.limits import check_media
from zhiku.api.schemas.requests import DocumentsIn
from zhiku.api.schemas.responses import (
    ChunkOut,
    Deleted,
    DocumentList,
    DocumentOut,
    DocumentSummary,
    IngestResult,
    JobOut,
)
from zhiku.api.services import add_text_documents, ingest_files
from zhiku.engine.errors import InvalidRequest, NotFound
from zhiku.engine.names import COLLECTION_NAME_PATTERN, check_collection_name

router = APIRouter(tags=["documents"])

JSON = "application/json"
MULTIPART = "multipart/form-data"
MAX_FILES = 1000
_CHUNK = 1 << 20

_UPLOAD_SCHEMA = {
    "type": "object",
    "required": ["files"],
    "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "collection": {"type": "string", "pattern": COLLECTION_NAME_PATTERN, "default": "default"},
        "metadata": {"type": "string", "description": "a JSON object added to every file's metadata"},
    },
}
_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            JSON: {"schema": {"$ref": "#/components/schemas/DocumentsIn"}},
            MULTIPART: {"schema": _UPLOAD_SCHEMA},
        },
    }
}

BODY_SCHEMAS = (DocumentsIn,)
Collection = Annotated[str, Query(pattern=COLLECTION_NAME_PATTERN)]
DocId = Annotated[str, PathParam(min_length=1, max_length=512)]


@router.post(
    "/documents",
    status_code=201,
    response_model=IngestResult,
    openapi_extra=_OPENAPI,
    responses={202: {"model": IngestResult, "description": "queued as a background job"}},
)
async def add_documents(request: Request, access: AccessDep) -> Any:
    """Add or replace documents: JSON `{collection, documents: [{id, text, ...}]}` or multipart `files`."""
    check_media(request.headers.get("content-type"), (JSON, MULTIPART))
    if request.headers.get("content-type", "").lower().startswith(MULTIPART):
        return await _add_files(request, access)
    try:
        body = DocumentsIn.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    # Documents are bounded by the body limit, not max_text_chars: long ones are chunked.
    access.principal.authorize(body.collection, "write")

    outcome = await access.run(lambda: add_text_documents(access.writable_kb(body.collection), body.documents))
    access.metrics.ingested(body.collection, len(outcome.doc_ids), outcome.chunks)
    return IngestResult(collection=body.collection, doc_ids=outcome.doc_ids, chunks=outcome.chunks)


async def _add_files(request: Request, access: Access) -> Any:
    form = await request.form(max_files=MAX_FILES, max_fields=50)
    collection = check_collection_name(str(form.get("collection") or "default"))
    metadata = _metadata(form.get("metadata"))
    uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    if not uploads:
        raise InvalidRequest("multipart upload needs one or more `files` parts")
    # Everything is checked before a byte is saved: scope, collection, sizes.
    kb = await access.run(lambda: access.writable_kb(collection))
    uploads, refused = _within_file_limit(uploads)
    if not uploads:
        raise InvalidRequest("no file could be ingested", errors=refused)
    total = sum(f.size or 0 for f in uploads)
    if total > access.settings.server.inline_ingest_mb * 1024 * 1024:
        return await _queue_job(access, kb, collection, uploads, metadata, refused)
    folder = access.inline_dir()
    try:
        await _save(uploads, folder)
        outcome = await access.run(lambda: ingest_files(kb, folder, metadata, pool=access.parse_pool))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    outcome.errors = refused + outcome.errors
    access.metrics.ingested(collection, len(outcome.doc_ids), outcome.chunks)
    access.metrics.ingest_errors.inc(len(outcome.errors))
    if not outcome.doc_ids and outcome.errors:
        raise InvalidRequest("no file could be ingested", errors=outcome.errors)
    return IngestResult(collection=collection, doc_ids=outcome.doc_ids, chunks=outcome.chunks, errors=outcome.errors)


async def _queue_job(
    access: Access,
    kb: Any,
    collection: str,
    uploads: list[UploadFile],
    metadata: dict[str, Any],
    refused: list[dict[str, Any]],
) -> Any:
    job_id, folder = access.queue_job(collection)

    def work() -> IngestOutcome:
        outcome = ingest_files(kb, folder, metadata, background=True)
        outcome.errors = refused + outcome.errors
        return outcome

    try:
        files = await _save(uploads, folder)
        job = access.submit_job(job_id, collection, files, work)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # no job owns it yet
        raise
    result = IngestResult(collection=collection, job=JobOut(**job.model_dump()))
    return JSONResponse(result.model_dump(mode="json"), status_code=202, headers={"Location": f"/jobs/{job.id}"})


def _file_limit() -> int:
    """The ingest pipeline's per-file size limit, in bytes."""
    from zhiku.ingest.pipeline import IngestOptions

    return int(IngestOptions().max_file_mb * 2**20)


def _within_file_limit(uploads: list[UploadFile]) -> tuple[list[UploadFile], list[dict[str, Any]]]:
    """Uploads under the per-file size limit, and an error for each one over it (never saved)."""
    limit = _file_limit()
    kept, refused = [], []
    for i, upload in enumerate(uploads):
        if (upload.size or 0) > limit:
            refused.append({"file": safe_filename(upload.filename, i), "code": "too_large",
                            "error": f"file is over the {limit / 2**20:g} MB limit"})
        else:
            kept.append(upload)
    return kept, refused


async def _save(uploads: list[UploadFile], folder: Path) -> list[Path]:
    paths: list[Path] = []
    for i, upload in enumerate(uploads):
        name = safe_filename(upload.filename, i)
        if any(p.name == name for p in paths):
            name = f"{i}-{name}"
        path = folder / name
        with path.open("wb") as out:
            while chunk := await upload.read(_CHUNK):
                out.write(chunk)
        paths.append(path)
    return paths


def _metadata(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    try:
        value = json.loads(str(raw))
    except ValueError:
        raise InvalidRequest("metadata must be a JSON object", field="metadata") from None
    if not isinstance(value, dict):
        raise InvalidRequest("metadata must be a JSON object", field="metadata")
    return value


def _filters(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidRequest("filters must be a JSON object", field="filters") from None
    if not isinstance(value, dict):
        raise InvalidRequest("filters must be a JSON object", field="filters")
    return value


@router.get("/documents", response_model=DocumentList)
async def list_documents(
    access: AccessDep,
    collection: Collection = "default",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    filters: Annotated[str | None, Query(max_length=10_000, description="JSON filter object")] = None,
) -> DocumentList:
    """Documents of a collection in id order, a page at a time."""
    parsed = _filters(filters)
    limit = min(limit, access.settings.server.max_page)
    docs = await access.run(lambda: access.kb(collection).list_documents(offset=offset, limit=limit, filters=parsed))
    return DocumentList(
        collection=collection, offset=offset, limit=limit, documents=[DocumentSummary(**d) for d in docs]
    )


@router.get("/documents/{doc_id:path}", response_model=DocumentOut)
async def get_document(doc_id: DocId, access: AccessDep, collection: Collection = "default") -> DocumentOut:
    """One document with its text and chunks."""
    doc = await access.run(lambda: access.kb(collection).get_document(doc_id))
    return DocumentOut(
        doc_id=doc.doc_id,
        title=doc.title,
        source=doc.source,
        chunk_count=len(doc.chunks),
        content_hash=doc.content_hash,
        metadata=doc.metadata,
        text=doc.text,
        chunks=[ChunkOut(chunk_id=c.chunk_id, chunk_index=c.chunk_index, text=c.text, section=c.section) for c in doc.chunks],
    )


@router.delete("/documents/{doc_id:path}", response_model=Deleted)
async def delete_document(doc_id: DocId, access: AccessDep, collection: Collection = "default") -> Deleted:
    """Delete a document and all its chunks."""
    def run() -> None:
        kb = access.kb(collection, "write")
        if kb.count({"doc_id": doc_id}) == 0:
            raise NotFound(f"document {doc_id!r} not found", doc_id=doc_id)
        kb.delete([doc_id])

    await access.run(run)
    return Deleted(deleted=doc_id)


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(job_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$")], access: AccessDep) -> JobOut:
    """A background ingest job's state and result."""
    job = access.job(job_id)
    return JobOut(**job.model_dump())
