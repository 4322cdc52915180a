"""zhiku's HTTP API (FastAPI): `create_app(settings)` builds the app."""

from __future__ import annotations

from zhiku.api.app import create_app, create_app_from_env

__all__ = ["create_app", "create_app_from_env"]
