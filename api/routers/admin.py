"""Admin jobs: re-index a collection to another model without downtime.

The job runs in this server's job thread on the engine every request uses, so
the alias switch is seen by the next request at once; poll GET /jobs/{id}.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from zhiku.api.deps import JSON_ONLY, AccessDep
from zhiku.api.jobs import IngestOutcome
from zhiku.api.schemas.requests import ReindexRequest
from zhiku.api.schemas.responses import JobOut
from zhiku.engine.embedders import EMBEDDERS
from zhiku.engine.errors import InvalidRequest

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=JSON_ONLY)


@router.post("/reindex", status_code=202, response_model=JobOut)
async def reindex(body: ReindexRequest, access: AccessDep) -> JSONResponse:
    """Queue a re-index of a collection (admin scope); 202 with the job to poll."""
    from zhiku.engine.reindex import reindex as run
    from zhiku.library import read_files

    access.principal.authorize(body.collection, "admin")
    if body.embed_backend not in EMBEDDERS:
        raise InvalidRequest(f"unknown embedder backend {body.embed_backend!r}; known: {sorted(EMBEDDERS)}")
    engine = await access.run(lambda: access.admin_engine(body.collection))  # 404 now, not in the job
    embed = access.settings.embed.model_copy(update={"backend": body.embed_backend, "model": body.model})

    def work() -> IngestOutcome:
        result = run(engine, body.collection, embed, body.chunk_size, body.drop_old, None, read_files)
        return IngestOutcome(
            chunks=result.chunks,
            message=f"re-indexed {result.collection!r}: {result.old} -> {result.new}, "
            f"{result.documents} documents, {result.chunks} chunks in {result.seconds:.1f}s"
            + (f"; dropped {', '.join(result.dropped)}" if result.dropped else ""),
        )

    job_id, folder = access.queue_job(body.collection)
    folder.rmdir()  # a re-index uploads nothing
    job = access.submit_job(job_id, body.collection, [], work)
    out = JobOut(**job.model_dump())
    return JSONResponse(out.model_dump(mode="json"), status_code=202, headers={"Location": f"/jobs/{job.id}"})
