"""The web console at /ui and the offline API docs at /docs and /redoc.

Everything is served from files in this package (console) or in the installed
`fastapi-offline` package (Swagger UI and ReDoc bundles): no page loads
anything from another origin, and every HTML page carries a
Content-Security-Policy that allows only same-origin scripts and connections.
The console is plain ES modules, one file per view, with no build step.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import fastapi_offline
from fastapi import APIRouter, Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from zhiku.api.deps import PrincipalDep, SettingsDep

from zhiku.engine.errors import NotFound

router = APIRouter(include_in_schema=False)

UI_DIR = Path(__file__).resolve().parent.parent / "static" / "ui"
DOCS_DIR = Path(__file__).resolve().parent.parent / "static" / "docs"
BUNDLES_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"

# The console: same-origin only, no inline script or style, no framing.
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI and ReDoc set inline styles and ReDoc runs a blob: worker; scripts stay same-origin.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; font-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".png": "image/png",
          ".svg": "image/svg+xml", ".txt": "text/plain", ".json": "application/json"}
AssetPath = Annotated[str, PathParam(max_length=200)]


def _page(path: Path, csp: str) -> HTMLResponse:
    headers = {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    return HTMLResponse(path.read_text(encoding="utf-8"), headers=headers)


def _asset(root: Path, rel: str) -> FileResponse:
    """A file under `root`; NotFound for anything outside it or unknown types."""
    path = (root / rel).resolve()
    if not path.is_relative_to(root) or not path.is_file() or path.suffix not in _TYPES:
        raise NotFound(f"no such file {rel!r}")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers={"X-Content-Type-Options": "nosniff"})


@router.get("/")
async def root() -> RedirectResponse:
    """The console is the home page."""
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui")
@router.get("/ui/")
async def console() -> HTMLResponse:
    return _page(UI_DIR / "index.html", CONSOLE_CSP)


@router.get("/ui/me")
async def me(principal: PrincipalDep, settings: SettingsDep) -> JSONResponse:
    """What the console's key may do, and the server's search defaults (to draw only usable controls)."""
    r = settings.retrieval
    return JSONResponse({
        "scope": principal.scope,
        "collections": list(principal.collections),
        "keys_enabled": principal.key_id is not None,
        "defaults": {"fusion": r.fusion, "alpha": r.alpha, "top_k": r.top_k},
    })


@router.get("/ui/{rel:path}")
async def console_asset(rel: AssetPath) -> FileResponse:
    return _asset(UI_DIR, rel)


@router.get("/docs")
async def swagger() -> HTMLResponse:
    return _page(DOCS_DIR / "swagger.html", DOCS_CSP)


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return _page(DOCS_DIR / "redoc.html", DOCS_CSP)


# The one remote URL in the ReDoc bundle (its "powered by" logo), pointed at our own icon.
_REDOC_LOGO = (b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"/docs-assets/favicon.png")


@functools.cache
def _redoc_bundle() -> bytes:
    return (BUNDLES_DIR / "redoc.standalone.js").read_bytes().replace(*_REDOC_LOGO)


@router.get("/docs-assets/{rel:path}")
async def docs_asset(rel: AssetPath) -> Response:
    """Our init scripts first, then the bundles of the installed fastapi-offline package."""
    if rel == "redoc.standalone.js":
        return Response(_redoc_bundle(), media_type=_TYPES[".js"], headers={"X-Content-Type-Options": "nosniff"})
    local = (DOCS_DIR / rel).resolve()
    if local.is_relative_to(DOCS_DIR) and local.is_file() and local.suffix in (".js", ".css"):
        return _asset(DOCS_DIR, rel)
    return _asset(BUNDLES_DIR, rel)
