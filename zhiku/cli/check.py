"""`zhiku check --collection C [--repair]`: the consistency check of engine/check.py."""

from __future__ import annotations

from typing import Annotated

import typer

from zhiku.cli.common import Collection, DataDir, console, engine_for, make_settings, print_json
from zhiku.engine.check import check_collection


def check(
    collection: Collection,
    repair: Annotated[bool, typer.Option("--repair", help="Fix what can be fixed; say what could not be.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Check a collection: manifest, documents, both vectors of every chunk, BM25 recount.

    Exits 0 when the collection is consistent (after --repair: when every
    problem was repaired), 1 otherwise.
    """
    settings = make_settings(data_dir)
    with engine_for(settings) as engine:
        report = check_collection(engine.store, collection, settings, repair=repair)
    if as_json:
        print_json(report.to_dict())
    else:
        typer.echo(report.render())
    if not report.ok:
        raise typer.Exit(1)
