"""`zhiku summarize|extract|classify|rewrite|generate`: the LLM abilities from the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from zhiku.cli.common import DataDir, console, print_json
from zhiku.cli.llm_common import (
    Backend,
    FileOpt,
    Model,
    TextArg,
    llm_overrides,
    llm_service,
    read_text,
    stream_out,
)
from zhiku.engine.errors import ZhikuError

OptCollection = Annotated[
    Optional[str], typer.Option("--collection", "-c", help="Collection (for documents or search).")
]


def _fail(exc: ZhikuError) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc.message}")
    return typer.Exit(1)


def summarize(
    text: TextArg = None,
    file: FileOpt = None,
    doc: Annotated[Optional[list[str]], typer.Option("--doc", help="Document id; repeatable.")] = None,
    query: Annotated[Optional[str], typer.Option("--query", "-q", help="Summarize these search results.")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k")] = 10,
    length: Annotated[str, typer.Option(help="short, medium or long.")] = "short",
    collection: OptCollection = None,
    llm_backend: Backend = None,
    model: Model = None,
    data_dir: DataDir = None,
) -> None:
    """Summarize a text, stored documents, or search results (map-reduce when long)."""
    from_kb = bool(doc or query)
    if from_kb and collection is None:
        console.print("[red]error:[/red] --doc and --query need --collection")
        raise typer.Exit(2)
    with llm_service(data_dir, collection, **llm_overrides(llm_backend, model)) as service:
        try:
            texts = None if from_kb else read_text(text, file)
            stream_out(service.summarize_stream(texts, length, doc or (), query, top_k))
        except ZhikuError as exc:
            raise _fail(exc) from exc


def extract(
    schema: Annotated[Path, typer.Option("--schema", help="JSON Schema file.")],
    text: TextArg = None,
    file: FileOpt = None,
    retries: Annotated[Optional[int], typer.Option(help="Retries after invalid output.")] = None,
    llm_backend: Backend = None,
    model: Model = None,
    data_dir: DataDir = None,
) -> None:
    """Extract JSON matching a JSON Schema from a text (validated, retried with the error)."""
    try:
        spec = json.loads(schema.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        console.print(f"[red]error:[/red] cannot read schema {schema}: {exc}")
        raise typer.Exit(2) from exc
    body = read_text(text, file)
    with llm_service(data_dir, None, **llm_overrides(llm_backend, model)) as service:
        try:
            result = service.extract(body, spec, retries)
        except ZhikuError as exc:
            raise _fail(exc) from exc
    if not result.valid:
        console.print(f"[red]no valid JSON after {result.attempts} attempts:[/red] {result.errors[-1]}")
        raise typer.Exit(1)
    print_json(result.data)


def classify(
    label: Annotated[list[str], typer.Option("--label", "-l", help="Label, or label=description; repeat.")],
    text: TextArg = None,
    file: FileOpt = None,
    multi: Annotated[bool, typer.Option("--multi", help="Allow several labels.")] = False,
    examples: Annotated[
        Optional[Path], typer.Option("--examples", help="JSONL of {text, label} few-shot examples.")
    ] = None,
    llm_backend: Backend = None,
    model: Model = None,
    data_dir: DataDir = None,
) -> None:
    """Classify a text into the given labels, with a confidence."""
    labels = dict(part.split("=", 1) if "=" in part else (part, "") for part in label)
    shots = []
    if examples is not None:
        try:
            rows = [json.loads(line) for line in examples.read_text(encoding="utf-8").splitlines() if line.strip()]
            shots = [(r["text"], r["label"]) for r in rows]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            console.print(f"[red]error:[/red] bad examples file {examples}: {exc}")
            raise typer.Exit(2) from exc
    body = read_text(text, file)
    with llm_service(data_dir, None, **llm_overrides(llm_backend, model)) as service:
        try:
            result = service.classify(body, labels, shots, multi)
        except ZhikuError as exc:
            raise _fail(exc) from exc
    print_json({"labels": result.labels, "confidence": round(result.confidence, 4), "scores": result.scores})


def rewrite(
    text: TextArg = None,
    file: FileOpt = None,
    style: Annotated[str, typer.Option(help="polish, correct, simplify or translate.")] = "polish",
    to: Annotated[Optional[str], typer.Option("--to", help="Target language for translate (en, zh...).")] = None,
    llm_backend: Backend = None,
    model: Model = None,
    data_dir: DataDir = None,
) -> None:
    """Polish, correct, simplify or translate a text (streams)."""
    body = read_text(text, file)
    with llm_service(data_dir, None, **llm_overrides(llm_backend, model)) as service:
        try:
            stream_out(service.rewrite_stream(body, style, to))
        except ZhikuError as exc:
            raise _fail(exc) from exc


def generate(
    prompt: TextArg = None,
    file: FileOpt = None,
    grounded: Annotated[bool, typer.Option("--grounded", help="Ground in --collection's search results.")] = False,
    top_k: Annotated[int, typer.Option("--top-k", "-k")] = 5,
    collection: OptCollection = None,
    llm_backend: Backend = None,
    model: Model = None,
    data_dir: DataDir = None,
) -> None:
    """Free generation, optionally grounded in retrieval (streams)."""
    if grounded and collection is None:
        console.print("[red]error:[/red] --grounded needs --collection")
        raise typer.Exit(2)
    body = read_text(prompt, file)
    with llm_service(data_dir, collection if grounded else None, **llm_overrides(llm_backend, model)) as service:
        try:
            stream_out(service.generate_stream(body, grounded, top_k))
        except ZhikuError as exc:
            raise _fail(exc) from exc


COMMANDS = (summarize, extract, classify, rewrite, generate)
