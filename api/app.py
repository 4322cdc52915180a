"""The FastAPI app factory: nothing heavy at import or construction time.

`create_app(settings)` resolves settings (cheap) and wires routers, error
handlers and metrics; the lifespan builds `Services` (the engine with its
store and embedder, keys, LLM gate, job runner) once on startup and closes
them on shutdown. `create_app_from_env()` is the uvicorn factory `zhiku serve`
uses when it runs several workers.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, AsyncIterator

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.routing import Route

import zhiku
from zhiku.api.errors import ERROR_RESPONSES, install_error_handlers
from zhiku.api.hosts import HostOriginMiddleware
from zhiku.api.limits import BodyLimitMiddleware
from zhiku.api.mcp_server import McpHttp, build_mcp
from zhiku.api.metrics import Metrics, MetricsMiddleware
from zhiku.api.routers import BODY_SCHEMAS, ROUTERS
from zhiku.api.security import check_binding
from zhiku.api.services import Services
from zhiku.engine.engine import Engine
from zhiku.engine.settings import Settings, load_settings

if TYPE_CHECKING:
    from zhiku.engine.llm.base import Generator

log = logging.getLogger("zhiku.api")

DESCRIPTION = """Hybrid (dense + BM25) search and grounded answers over your documents.

Errors always have the shape `{"error": {"code", "message", "details"}}`.
With API keys configured, send `Authorization: Bearer zk_...` (or `X-API-Key`).
`POST /v1/chat/completions` is OpenAI-compatible: use model `zhiku/<collection>`;
citations come in the `zhiku` extension field.
"""


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    generator: Generator | None = None,
) -> FastAPI:
    """A zhiku app; `engine` (not closed by the app) and `generator` replace the configured ones."""
    resolved = settings if settings is not None else load_settings()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services(resolved, engine=engine, metrics=metrics, generator=generator)
        try:
            notice = check_binding(resolved.server.host, services.auth.keyed)
        except Exception:
            services.close(own_engine=engine is None)
            raise
        if notice:
            log.warning(notice)
        app.state.services = services
        services.start()
        try:
            async with mcp_http.lifespan():
                yield
        finally:
            services.close(own_engine=engine is None)

    app = FastAPI(
        title="zhiku",
        version=zhiku.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        # Served offline by the ui router from an installed package, never from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    # Added last = outermost: oversized bodies and refused hosts are still counted in the metrics.
    app.add_middleware(HostOriginMiddleware, allowed_hosts=list(resolved.server.allowed_hosts))
    app.add_middleware(BodyLimitMiddleware, max_bytes=int(resolved.server.max_body_mb * 1024 * 1024))
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    _publish_schemas(app, BODY_SCHEMAS)
    mcp_http = McpHttp(build_mcp(lambda: app.state.services), lambda: app.state.services, resolved.server.host)
    app.router.routes.append(Route("/mcp", mcp_http, include_in_schema=False))
    return app


def _publish_schemas(app: FastAPI, models: tuple[type[BaseModel], ...]) -> None:
    """Add models that routes parse by hand (no body parameter) to the OpenAPI components."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                js = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(js.pop("$defs", {}))
                components[model.__name__] = js
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def create_app_from_env() -> FastAPI:
    """uvicorn `--factory` entry: settings from ZHIKU_* and zhiku.toml."""
    return create_app(load_settings())
