"""`zhiku search`: query a collection from the terminal."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Optional

import typer
from rich.table import Table

from zhiku.cli.common import Collection, DataDir, console, engine_for, make_settings, print_json
from zhiku.engine.errors import ZhikuError
from zhiku.engine.filters import parse_filter_args


def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    collection: Collection = "default",
    mode: Annotated[Optional[str], typer.Option(help="hybrid, dense or bm25.")] = None,
    fusion: Annotated[Optional[str], typer.Option(help="convex, rrf or dbsf.")] = None,
    alpha: Annotated[Optional[float], typer.Option(help="Dense weight for convex fusion.")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Results to return.")] = 10,
    filter_: Annotated[
        Optional[list[str]], typer.Option("--filter", "-f", help="key=value; repeat for any-of.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Search a collection (hybrid dense + BM25 by default)."""
    settings = make_settings(data_dir)
    with engine_for(settings) as engine:
        try:
            filters = parse_filter_args(filter_)
        except ZhikuError as exc:
            console.print(f"[red]error:[/red] {exc.message}")
            raise typer.Exit(2) from exc
        kb = engine.kb(collection)
        hits, timings = kb.search_debug(query, top_k, mode, filters, fusion, alpha)
    if as_json:
        print_json({"hits": [asdict(h) for h in hits], "timings_ms": timings})
        return
    table = Table(title=f"{len(hits)} hits in {timings['total_ms']:.1f} ms")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("document")
    table.add_column("text")
    for rank, hit in enumerate(hits, 1):
        snippet = hit.text.replace("\n", " ")
        table.add_row(str(rank), f"{hit.score:.3f}", hit.title or hit.doc_id, snippet[:160])
    console.print(table)
