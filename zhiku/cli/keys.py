"""`zhiku keys create|list|revoke`: API keys for the HTTP server."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from zhiku.cli.common import DataDir, console, make_settings, print_json

app = typer.Typer(no_args_is_help=True, help="Manage API keys (stored hashed in DATA_DIR/keys.json).")


def _store(data_dir):  # type: ignore[no-untyped-def]
    from zhiku.api.security import KeyStore

    return KeyStore(make_settings(data_dir).data_dir)


@app.command()
def create(
    collection: Annotated[
        list[str], typer.Option("--collection", "-c", help="Collection the key may use; repeat, or '*' for all.")
    ],
    scope: Annotated[str, typer.Option("--scope", help="read, write or admin.")] = "read",
    name: Annotated[str, typer.Option("--name", help="A label to recognise the key by.")] = "",
    data_dir: DataDir = None,
) -> None:
    """Create a key; the secret is printed once, on stdout."""
    from zhiku.engine.errors import ZhikuError

    if scope not in ("read", "write", "admin"):
        console.print("[red]error:[/red] --scope must be read, write or admin")
        raise typer.Exit(2)
    try:
        token, record = _store(data_dir).create(collection, scope, name)  # type: ignore[arg-type]
    except ZhikuError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    console.print(
        f"created key {record.id} ({record.scope} on {', '.join(record.collections)}); "
        "store the secret now, it is not kept:"
    )
    sys.stdout.write(token + "\n")


@app.command("list")
def list_(
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys (ids and scopes; secrets are never stored)."""
    records = _store(data_dir).records()
    if as_json:
        print_json([r.model_dump(mode="json", exclude={"hash"}) for r in records])
        return
    table = Table(title="API keys")
    for col in ("id", "name", "scope", "collections", "created", "revoked"):
        table.add_column(col)
    for r in records:
        table.add_row(
            r.id, r.name, r.scope, ", ".join(r.collections), r.created_at.isoformat(timespec="seconds"),
            "yes" if r.revoked else "",
        )
    console.print(table)


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id shown by `zhiku keys list`.")],
    data_dir: DataDir = None,
) -> None:
    """Revoke a key; it stops working at once, also on a running server."""
    from zhiku.engine.errors import ZhikuError

    store = _store(data_dir)
    try:
        record = store.revoke(key_id)
    except ZhikuError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    console.print(f"revoked key {record.id}")
    if not store.active():
        # A keyed server never falls back to open access (api.security.Auth).
        console.print("[yellow]no active key is left: a server answers 401 to every request until you "
                      "create one[/yellow]")


__all__ = ["app"]
