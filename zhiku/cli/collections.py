"""`zhiku collections list|info|delete|optimize`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from zhiku.cli.common import DataDir, console, engine_for, make_settings, print_json

app = typer.Typer(no_args_is_help=True, help="Manage collections (knowledge bases).")
Name = Annotated[str, typer.Argument(help="Collection name.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("list")
def list_(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List collections with their sizes."""
    with engine_for(make_settings(data_dir)) as engine:
        infos = [engine.collection_info(name) for name in engine.list_collections()]
    if as_json:
        print_json(infos)
        return
    table = Table(title="collections")
    for col in ("name", "documents", "chunks", "model"):
        table.add_column(col)
    for info in infos:
        model = info["manifest"].get("embedder", {}).get("model_id", "?")
        table.add_row(info["name"], str(info["documents"]), str(info["chunks"]), model)
    console.print(table)


@app.command()
def info(name: Name, data_dir: DataDir = None) -> None:
    """Show a collection's stats and build manifest."""
    with engine_for(make_settings(data_dir)) as engine:
        print_json(engine.collection_info(name))


@app.command()
def delete(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Delete a collection and all its data."""
    if not yes:
        typer.confirm(f"Delete collection {name!r} and all its data?", abort=True)
    with engine_for(make_settings(data_dir)) as engine:
        engine.drop_collection(name)
    console.print(f"deleted collection {name!r}")


@app.command()
def optimize(name: Name, data_dir: DataDir = None) -> None:
    """Build the HNSW index of a collection (ingest does this at its end)."""
    with engine_for(make_settings(data_dir)) as engine:
        engine.kb(name).optimize()
    console.print(f"optimized {name!r}")
