"""Helpers the LLM commands share: the service for a collection, input text, streaming."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Iterator, Optional

import typer

from zhiku.cli.common import console, engine_for, make_settings

if TYPE_CHECKING:
    from zhiku.engine.llm.abilities import LLMService

Backend = Annotated[
    Optional[str],
    typer.Option("--llm-backend", help="llamacpp, transformers, openai or fake (env ZHIKU_LLM__BACKEND)."),
]
Model = Annotated[Optional[Path], typer.Option("--model", help="Model file or folder (llm.model_path).")]
TextArg = Annotated[Optional[str], typer.Argument(help="The text; '-' or omitted reads stdin.")]
FileOpt = Annotated[Optional[Path], typer.Option("--file", help="Read the text from a file.")]


def llm_overrides(backend: str | None, model: Path | None) -> dict[str, Any]:
    """Settings overrides from the common --llm-backend / --model options."""
    return {"llm__backend": backend, "llm__model_path": model}


def read_text(text: str | None, file: Path | None) -> str:
    """The command's input: an argument, a file, or stdin."""
    if file is not None:
        try:
            return file.read_text(encoding="utf-8")
        except OSError as exc:
            console.print(f"[red]error:[/red] cannot read {file}: {exc.strerror}")
            raise typer.Exit(2) from exc
    if text is None or text == "-":
        return sys.stdin.read()
    return text


@contextmanager
def llm_service(data_dir: Path | None, collection: str | None, **overrides: Any) -> Iterator["LLMService"]:
    """The engine's LLMService, over a collection when one is named; domain errors become exit 1."""
    settings = make_settings(data_dir, **overrides)
    with engine_for(settings) as engine:
        yield engine.llm(engine.kb(collection) if collection is not None else None)


def stream_out(pieces: Iterator[str]) -> str:
    """Write tokens to stdout as they come; return the whole text."""
    out = []
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
        out.append(piece)
    sys.stdout.write("\n")
    return "".join(out)
