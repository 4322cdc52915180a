"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from zhiku.api.deps import AccessDep, ServicesDep
from zhiku.api.metrics import CONTENT_TYPE
from zhiku.api.schemas.responses import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """The store and key file answer; 503 otherwise."""
    checks = services.ready()
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ok else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}}},
)
async def metrics(access: AccessDep) -> Response:
    """Prometheus text format: requests, latencies per route and stage, ingest counters.

    With keys configured this needs an admin key for all collections (`*`): labels name every collection.
    """
    return Response(access.metrics_text(), media_type=CONTENT_TYPE)
