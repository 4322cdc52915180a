"""Trusted hosts and same-origin writes: the guard against DNS rebinding and cross-site requests.

A server with no API keys trusts whoever reaches it on loopback, and a web
page the user opens can reach loopback too: through a name the attacker
later points at 127.0.0.1 (DNS rebinding: the request carries the
attacker's Host), or by posting a form across sites (it carries the page's
Origin). So:

1. Host: an open (keyless) server answers only Host names that are loopback
   (`localhost`, 127.0.0.0/8, ::1) or listed in `server.allowed_hosts`;
   others get 400. A keyed server checks Host only when `allowed_hosts` is
   set (the key already stops a foreign page). `"*"` turns the check off.
   Only network peers are checked: an in-process transport has no DNS.
2. Origin: a state-changing request (not GET, HEAD or OPTIONS) that carries
   an Origin gets 403 unless the Origin is the server itself (same host and
   port as the Host header, as the web console at /ui is) or its host is in
   `allowed_hosts`. Clients that send no Origin (curl, SDKs) pass.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from zhiku.api.errors import error_body
from zhiku.api.security import is_loopback, network_peer

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def host_name(netloc: str) -> str:
    """The host of a Host header or URL netloc, lower-cased, without port or trailing dot."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")] if "]" in netloc else netloc
    try:
        ipaddress.IPv6Address(netloc)
        return netloc  # a bare IPv6 address has colons but no port
    except ValueError:
        pass
    return netloc.rsplit(":", 1)[0].rstrip(".") if ":" in netloc else netloc.rstrip(".")


def _listed(host: str, allowed: Iterable[str]) -> bool:
    for pattern in allowed:
        pattern = pattern.lower().rstrip(".")
        if pattern == "*" or host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


def _netloc(value: str) -> str:
    """host:port with the scheme's default port spelled out, for comparing Origin and Host."""
    parts = urlsplit(value if "//" in value else f"//{value}")
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)
    return f"{host_name(parts.netloc)}:{port}"


class HostOriginMiddleware:
    """400 for an untrusted Host, 403 for a foreign Origin on a state-changing request."""

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.allowed = tuple(allowed_hosts)

    def _keyed(self, scope: Scope) -> bool:
        services = getattr(getattr(scope.get("app"), "state", None), "services", None)
        # Before the lifespan has built the services, assume the stricter open mode.
        return bool(services is not None and services.auth.keyed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        refusal = self._check_host(scope, host) or self._check_origin(scope, headers.get("origin"), host)
        if refusal is not None:
            status, code, message = refusal
            await JSONResponse(error_body(code, message), status_code=status)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _check_host(self, scope: Scope, host: str) -> tuple[int, str, str] | None:
        if network_peer(scope.get("client")) is None:
            return None
        if self._keyed(scope) and not self.allowed:
            return None
        name = host_name(host)
        if is_loopback(name) or _listed(name, self.allowed):
            return None
        return 400, "bad_request", f"untrusted Host {name!r}; add it to server.allowed_hosts to serve it"

    def _check_origin(self, scope: Scope, origin: str | None, host: str) -> tuple[int, str, str] | None:
        if origin is None or scope.get("method", "GET") in SAFE_METHODS:
            return None
        if origin != "null" and "//" in origin:
            if host and _netloc(origin) == _netloc(f"{scope.get('scheme', 'http')}://{host}"):
                return None
            if _listed(host_name(urlsplit(origin).netloc), self.allowed):
                return None
        return 403, "forbidden", "cross-origin request refused: the Origin is not this server"
