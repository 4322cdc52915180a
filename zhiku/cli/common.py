"""Options and helpers every command group shares."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional
from contextlib import contextmanager

import typer
from rich.console import Console

from zhiku.engine.errors import ZhikuError
from zhiku.engine.settings import Settings, load_settings

DataDir = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="Data directory (env ZHIKU_DATA_DIR, default ./zhiku-data)."),
]
Collection = Annotated[str, typer.Option("--collection", "-c", help="Collection name.")]

console = Console(stderr=True)


def make_settings(data_dir: Path | None, **overrides: Any) -> Settings:
    """Settings for one command: environment and zhiku.toml, then the command's options."""
    try:
        return load_settings(data_dir=data_dir, **overrides)
    except Exception as exc:  # pydantic validation errors carry a readable message
        console.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc


@contextmanager
def engine_for(settings: Settings) -> Iterator[Any]:
    """An Engine that is closed on exit, with domain errors printed, not traced."""
    from zhiku.engine.engine import Engine

    engine = None
    try:
        engine = Engine(settings)
        yield engine
    except ZhikuError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    finally:
        if engine is not None:
            engine.close()


def print_json(data: Any) -> None:
    """Write JSON to stdout (not the rich console, so it pipes cleanly)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
