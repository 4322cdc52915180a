"""`zhiku serve`: run the HTTP API with uvicorn."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from zhiku.cli.common import DataDir, console, make_settings
from zhiku.engine.errors import ConfigError


def serve(
    host: Annotated[Optional[str], typer.Option("--host", help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="Port (default 8000).")] = None,
    data_dir: DataDir = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes (server store only).")] = 1,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Serve the HTTP API. Without API keys only a loopback address (and loopback clients) is allowed."""
    import uvicorn

    from zhiku.api.security import Auth, KeyStore, check_binding

    settings = make_settings(data_dir, server__host=host, server__port=port)
    s = settings.server
    try:
        # The same decision the app makes at start: keyed as soon as the key file holds a key.
        notice = check_binding(s.host, Auth(KeyStore(settings.data_dir)).keyed)
        if workers > 1 and settings.store.backend == "edge":
            raise ConfigError(
                "the embedded edge store is served by one process; use --workers 1, "
                "or store.backend=server for several stateless workers"
            )
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    if notice:
        console.print(f"[yellow]{notice}[/yellow]")
    console.print(f"zhiku API on http://{s.host}:{s.port} (data dir {Path(settings.data_dir).resolve()})")
    common = dict(host=s.host, port=s.port, log_level=log_level, timeout_graceful_shutdown=10)
    if workers == 1:
        from zhiku.api import create_app

        uvicorn.run(create_app(settings), **common)  # type: ignore[arg-type]
        return
    # Each worker builds its own app from the environment, so pass what the options set.
    os.environ["ZHIKU_DATA_DIR"] = str(settings.data_dir)
    os.environ["ZHIKU_SERVER__HOST"] = s.host
    os.environ["ZHIKU_SERVER__PORT"] = str(s.port)
    uvicorn.run("zhiku.api.app:create_app_from_env", factory=True, workers=workers, **common)  # type: ignore[arg-type]
