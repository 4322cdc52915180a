"""Domain errors mapped to HTTP in one place, all in one JSON shape.

Every error body is `{"error": {"code", "message", "details"}}`, whether it
came from the engine, from request validation, from Starlette (404 route,
405, 413) or from a bug (500, without internals).
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from zhiku.engine.errors import (
    AlreadyExists,
    ConfigError,
    InvalidRequest,
    ManifestMismatch,
    ModelUnavailable,
    NotFound,
    Overloaded,
    StoreLocked,
    VersionRetired,
    ZhikuError,
)
from zhiku.engine.llm.cancel import Cancelled
from zhiku.ingest.pool import PoolBroken

log = logging.getLogger("zhiku.api")


class Unauthorized(ZhikuError):
    """No or an unknown API key."""

    code = "unauthorized"


class Forbidden(ZhikuError):
    """The key exists but may not do this (scope or collection)."""

    code = "forbidden"


class UnsupportedMedia(ZhikuError):
    """A body in a media type the route does not take."""

    code = "unsupported_media_type"


class Timeout(ZhikuError):
    """Work took longer than server.request_timeout_s."""

    code = "timeout"

    def __init__(self, message: str, retry_after_s: float = 5.0, **details: object) -> None:
        super().__init__(message, **details)
        self.retry_after_s = retry_after_s


class Busy(Timeout):
    """Too much work is still running (timed-out threads included); retry later."""

    code = "busy"


# Most specific first: the first class an error is an instance of wins.
STATUS: dict[type[ZhikuError], int] = {
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    AlreadyExists: 409,
    ManifestMismatch: 409,
    UnsupportedMedia: 415,
    InvalidRequest: 422,
    Overloaded: 429,
    StoreLocked: 503,
    ModelUnavailable: 503,
    Timeout: 503,
    Cancelled: 503,
    PoolBroken: 503,
    VersionRetired: 503,
    ConfigError: 500,
}

HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "overloaded",
    500: "internal_error",
    503: "unavailable",
}


def status_for(exc: ZhikuError) -> int:
    """The HTTP status of a domain error."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one error shape."""
    return {"error": {"code": code, "message": message, "details": _jsonable(details or {})}}


def _jsonable(value: Any) -> Any:
    # Validation details can carry inf/nan or arbitrary objects from bad input.
    encoded = jsonable_encoder(value, custom_encoder={bytes: lambda b: b.decode("utf-8", "replace")})
    return _finite(encoded)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _retry_headers(exc: Exception) -> dict[str, str]:
    retry = getattr(exc, "retry_after_s", None)
    return {"Retry-After": str(max(1, math.ceil(retry)))} if retry is not None else {}


def error_response(exc: ZhikuError) -> JSONResponse:
    """A JSONResponse for a domain error (also used by middleware and SSE setup)."""
    status = status_for(exc)
    headers = _retry_headers(exc)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 503 and "Retry-After" not in headers:
        headers["Retry-After"] = "5"
    # Domain messages are written for users, but some name files (a model, a
    # store lock): the server's paths are nobody's business, so they go.
    body = error_body(exc.code, scrub_paths(exc.message), scrub_paths(_jsonable(exc.details)))
    return JSONResponse(body, status, headers=headers)


_ABS_PATH = re.compile(r"(?<![\w:/.])(?:/[^\s/'\"(),;:]+){2,}/?")


def scrub_paths(value: Any) -> Any:
    """`value` with absolute file paths replaced by their last component."""
    if isinstance(value, str):
        return _ABS_PATH.sub(lambda m: "…/" + m.group(0).rstrip("/").rsplit("/", 1)[-1], value)
    if isinstance(value, dict):
        return {k: scrub_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_paths(v) for v in value]
    return value


async def _domain(request: Request, exc: ZhikuError) -> JSONResponse:
    if status_for(exc) >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc.message)
    return error_response(exc)


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return JSONResponse(error_body("invalid_request", "request validation failed", {"errors": errors}), 422)


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return JSONResponse(error_body(code, message), exc.status_code, headers=getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("internal_error", "internal server error"), 500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the same shape."""
    app.add_exception_handler(ZhikuError, _domain)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


def _documented() -> dict[int | str, dict[str, Any]]:
    from zhiku.api.schemas.responses import ErrorResponse

    reasons = {
        400: "malformed body (not parseable JSON or multipart)",
        401: "missing or unknown API key",
        403: "the key may not use this collection or scope",
        404: "no such collection, document, job or model",
        409: "already exists, or built with another embedding model",
        413: "request body too large",
        415: "unsupported media type",
        422: "invalid request (validation, limits, bad filters)",
        429: "LLM queue full; see Retry-After",
        503: "timed out, store locked or model unavailable; see Retry-After",
    }
    return {code: {"model": ErrorResponse, "description": text} for code, text in reasons.items()}


# Every route documents the one error shape (and FastAPI's own 422 schema is replaced).
ERROR_RESPONSES = _documented()
