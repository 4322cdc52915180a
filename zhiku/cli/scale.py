"""`zhiku reindex|snapshot|restore|migrate`: change models and move data without downtime."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from zhiku.cli.common import Collection, DataDir, console, engine_for, make_settings, print_json
from zhiku.engine.reindex import Progress as ProgressFn


@contextmanager
def _bars() -> Iterator[object]:
    """A `progress(label)` factory: each label gets a bar fed (done, total)."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bars:

        def progress(label: str) -> ProgressFn:
            task = bars.add_task(label, total=None)
            return lambda done, total: bars.update(task, completed=done, total=total or None)

        yield progress


def reindex(
    embed_backend: Annotated[str, typer.Option("--embed-backend", help="Embedder of the new version.")],
    collection: Collection = "default",
    model: Annotated[Optional[str], typer.Option("--model", help="Model of that backend.")] = None,
    chunk_size: Annotated[
        Optional[int], typer.Option("--chunk-size", help="New chunk size (re-reads the original files).")
    ] = None,
    drop_old: Annotated[bool, typer.Option("--drop-old", help="Delete old versions after the switch.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Re-index a collection into a new version, then switch its alias (no downtime)."""
    from zhiku.engine.reindex import reindex as run
    from zhiku.library import read_files

    settings = make_settings(data_dir)
    embed = settings.embed.model_copy(update={"backend": embed_backend, "model": model})
    with engine_for(settings) as engine, _bars() as progress:
        bar = progress(f"re-embedding {collection}")  # type: ignore[operator]
        result = run(engine, collection, embed, chunk_size, drop_old, bar, read_files)
    print_json(asdict(result))


def snapshot(
    collection: Collection = "default",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Tar file to write (embedded store).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Snapshot a collection: a tar after flush (embedded) or Qdrant's snapshot (server)."""
    from zhiku.engine.backup import snapshot_embedded, snapshot_server

    settings = make_settings(data_dir)
    with engine_for(settings) as engine:
        if settings.store.backend == "edge":
            made: object = snapshot_embedded(engine, collection, out or Path(f"{collection}.snapshot.tar"))
        else:
            made = snapshot_server(engine, collection)
    console.print(f"snapshot of {collection!r}: {made}")


def restore(
    source: Annotated[str, typer.Argument(help="Snapshot tar (embedded) or snapshot URL/file:// (server).")],
    collection: Annotated[
        Optional[str], typer.Option("--collection", "-c", help="Name to restore as (default: the original).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Restore a collection from a snapshot; the name must be free."""
    from zhiku.engine.backup import restore_embedded, restore_server

    settings = make_settings(data_dir)
    with engine_for(settings) as engine:
        if settings.store.backend == "edge":
            name = restore_embedded(engine, Path(source), collection)
        else:
            if not collection:
                console.print("[red]error:[/red] --collection is required with the server store")
                raise typer.Exit(2)
            name = restore_server(engine, source, collection)
    console.print(f"restored {name!r}")


def migrate(
    from_data_dir: Annotated[Path, typer.Option("--from-data-dir", help="Embedded data dir to read.")],
    to_url: Annotated[str, typer.Option("--to-url", help="Qdrant URL to write (or a local-mode path).")],
    collection: Annotated[
        Optional[list[str]], typer.Option("--collection", "-c", help="Only these (repeat); default all.")
    ] = None,
    sample: Annotated[int, typer.Option("--sample", help="Stored points used as verification queries.")] = 100,
) -> None:
    """Copy collections from the embedded store to a Qdrant server, vectors and all, then verify."""
    from zhiku.engine.backup import migrate as run
    from zhiku.engine.stores.server import ServerStore

    source_settings = make_settings(from_data_dir, store={"backend": "edge"})
    target_settings = make_settings(from_data_dir, store={"backend": "server", "url": to_url})
    with engine_for(source_settings) as engine, _bars() as progress:
        target = ServerStore(target_settings.store)
        try:
            moved = run(engine, target, collection, progress, sample)  # type: ignore[arg-type]
        finally:
            target.close()
    print_json([{**asdict(m), "ok": m.verification.ok} for m in moved])
    if not all(m.verification.ok for m in moved):
        console.print("[red]verification failed[/red]: counts or top-10 results differ")
        raise typer.Exit(1)
