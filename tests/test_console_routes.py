"""The console's and the API docs' routes: offline assets, CSP, no path escapes, the key's view of itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api_support import api_client, fake_settings
from zhiku.api.routers.ui import BUNDLES_DIR, UI_DIR
from zhiku.api.security import KeyStore

REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|import[^;]*["'](?:https?:)?//|url\(\s*["']?(?:https?:)?//""")


@pytest.fixture
def client(tmp_path: Path):  # type: ignore[no-untyped-def]
    with api_client(fake_settings(tmp_path), seed=False) as c:
        yield c


def test_root_redirects_to_console(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/ui/"


def test_console_page_allows_only_same_origin(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/ui/")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["connect-src"] == "'self'"
    assert "http" not in csp


def test_console_sources_load_nothing_remote() -> None:
    """Our own files name no remote script, style, image or import (vendored libraries are checked by the browser test)."""
    own = [p for p in UI_DIR.rglob("*") if p.is_file() and "vendor" not in p.parts and p.suffix in (".js", ".html", ".css")]
    assert len(own) >= 10
    for path in own:
        assert not REMOTE.search(path.read_text(encoding="utf-8")), path


@pytest.mark.parametrize("path", ["/ui/../app.py", "/ui/%2e%2e/app.py", "/ui/..%2f..%2fapi%2fapp.py", "/ui/nope.js", "/ui/views"])
def test_console_assets_stay_in_their_folder(client, path: str) -> None:  # type: ignore[no-untyped-def]
    r = client.get(path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_console_assets_have_types(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/ui/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/ui/views/ask.js").status_code == 200
    assert client.get("/ui/style.css").headers["content-type"].startswith("text/css")


def test_docs_pages_are_offline(client) -> None:  # type: ignore[no-untyped-def]
    for page in ("/docs", "/redoc"):
        r = client.get(page)
        assert r.status_code == 200
        assert "cdn" not in r.text and "//" not in r.text.replace("<!doctype html>", "")
        assert "script-src 'self'" in r.headers["content-security-policy"]
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs-assets/swagger-init.js").status_code == 200
    redoc = client.get("/docs-assets/redoc.standalone.js")
    assert redoc.status_code == 200 and b"cdn.redoc.ly" not in redoc.content
    assert (BUNDLES_DIR / "redoc.standalone.js").exists()
    assert client.get("/openapi.json").status_code == 200
    assert "/ui/me" not in client.get("/openapi.json").json()["paths"]


def test_me_reports_the_keys_scope(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path)
    reader, _ = keys.create(["docs"], "read")
    with api_client(fake_settings(tmp_path), seed=False) as client:
        assert client.get("/ui/me").status_code == 401
        me = client.get("/ui/me", headers={"Authorization": f"Bearer {reader}"}).json()
        assert me["scope"] == "read" and me["collections"] == ["docs"] and me["keys_enabled"] is True
        assert me["defaults"]["fusion"] in ("convex", "rrf", "dbsf")


def test_me_without_keys_is_open(client) -> None:  # type: ignore[no-untyped-def]
    me = client.get("/ui/me").json()
    assert me["scope"] == "admin" and me["collections"] == ["*"] and me["keys_enabled"] is False
