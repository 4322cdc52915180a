"""`zhiku mcp`: serve the knowledge base to an agent over MCP on stdio."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from zhiku.cli.common import DataDir, console, make_settings


def mcp(
    data_dir: DataDir = None,
    key: Annotated[
        Optional[str],
        typer.Option(
            "--key",
            envvar="ZHIKU_MCP_KEY",
            help="Act with this API key's scope and collections (default: full access to the data dir).",
        ),
    ] = None,
) -> None:
    """Serve search, ask and documents as MCP tools over stdio (for desktop agents).

    Over HTTP the same tools are at /mcp of `zhiku serve`, with the REST API's keys.
    """
    from zhiku.api.mcp_server import build_mcp
    from zhiku.api.security import OPEN_ACCESS, KeyStore, Principal
    from zhiku.api.services import Services

    settings = make_settings(data_dir)
    principal = OPEN_ACCESS
    if key:
        record = KeyStore(settings.data_dir).verify(key)
        if record is None:
            console.print("[red]error:[/red] unknown or revoked API key")
            raise typer.Exit(2)
        principal = Principal.of(record)
    # stdout is the protocol channel: nothing else may write to it.
    os.environ.setdefault("TQDM_DISABLE", "1")
    services = Services(settings)
    services.start()
    try:
        build_mcp(lambda: services, principal).run("stdio")
    finally:
        services.close()
