"""`zhiku ingest PATH`: minimal ingest of .txt, .md and BEIR corpus.jsonl files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Iterator

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from zhiku.cli.common import Collection, DataDir, console, engine_for, make_settings

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
BATCH = 256


def _records(path: Path, root: Path) -> Iterator[tuple[str, str, dict]]:
    if path.name.endswith(".jsonl"):
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    yield str(row["_id"]), row.get("text", ""), {"title": row.get("title", ""), "source": str(path)}
    else:
        rel = path.relative_to(root).as_posix() if path != root else path.name
        yield rel, path.read_text(encoding="utf-8", errors="replace"), {"title": path.stem, "source": rel}


def ingest(
    path: Annotated[Path, typer.Argument(exists=True, help="A file or a directory.")],
    collection: Collection = "default",
    data_dir: DataDir = None,
) -> None:
    """Ingest .txt, .md and BEIR corpus.jsonl files into a collection."""
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and (p.suffix in TEXT_SUFFIXES or p.name.endswith(".jsonl"))
    )
    root = path if path.is_dir() else path.parent
    with engine_for(make_settings(data_dir)) as engine:
        kb = engine.kb(collection, create=True)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("files", total=len(files))
            batch: list[tuple[str, str, dict]] = []
            for file in files:
                batch.extend(_records(file, root))
                while len(batch) >= BATCH:
                    _flush(kb, batch[:BATCH])
                    del batch[:BATCH]
                progress.advance(task)
            _flush(kb, batch)
        kb.optimize()
        console.print(f"{collection}: {kb.count_documents()} documents, {kb.count()} chunks")


def _flush(kb, batch: list[tuple[str, str, dict]]) -> None:  # type: ignore[no-untyped-def]
    if batch:
        ids, texts, metas = zip(*batch)
        kb.add_texts(list(texts), ids=list(ids), metadatas=list(metas))
