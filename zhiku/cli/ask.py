"""`zhiku ask "question" --collection C`: a grounded answer streamed to the terminal."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from zhiku.cli.common import Collection, DataDir, console, print_json
from zhiku.cli.llm_common import Backend, Model, llm_overrides, llm_service
from zhiku.engine.errors import ZhikuError
from zhiku.engine.filters import parse_filter_args


def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    collection: Collection = "default",
    top_k: Annotated[Optional[int], typer.Option("--top-k", "-k", help="Sources in the context.")] = None,
    filter_: Annotated[
        Optional[list[str]], typer.Option("--filter", "-f", help="key=value; repeat for any-of.")
    ] = None,
    history: Annotated[
        Optional[Path], typer.Option("--history", help="JSON file of earlier turns [{role, content}].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole answer as JSON.")] = False,
    llm_backend: Backend = None,
    model: Model = None,
    data_dir: DataDir = None,
) -> None:
    """Answer from a collection's documents, with [n] citations (streams tokens)."""
    try:
        filters = parse_filter_args(filter_)
        turns = json.loads(history.read_text(encoding="utf-8")) if history else None
    except (ZhikuError, OSError, json.JSONDecodeError) as exc:
        console.print(f"[red]error:[/red] {getattr(exc, 'message', exc)}")
        raise typer.Exit(2) from exc
    with llm_service(data_dir, collection, **llm_overrides(llm_backend, model)) as service:
        try:
            answer = None
            streamed = ""
            for event in service.ask_stream(question, turns, filters=filters, top_k=top_k):
                if event.type == "token" and not as_json:
                    sys.stdout.write(event.data)
                    sys.stdout.flush()
                    streamed += event.data
                elif event.type == "done":
                    answer = event.data
        except ZhikuError as exc:
            console.print(f"[red]error:[/red] {exc.message}")
            raise typer.Exit(1) from exc
    assert answer is not None
    if as_json:
        print_json(answer.to_dict())
        return
    _finish(answer, streamed)


def _finish(answer, streamed: str) -> None:  # type: ignore[no-untyped-def]
    if answer.text.strip() != streamed.strip():
        # The checked answer differs from the raw stream: a refusal is replaced by the
        # canonical line, a quote or an answer with its cited sentence is printed whole.
        label = {"quote": "quoted from the sources: ", "refusal": ""}.get(answer.mode, "")
        sys.stdout.write(("\n\n" if streamed else "") + label + answer.text + "\n")
        if answer.refused:
            return
    elif streamed:
        sys.stdout.write("\n")
    if answer.citations:
        console.print("\n[bold]sources[/bold]")
        for c in answer.citations:
            console.print(f"[{c.n}] {c.title or c.doc_id} ({c.doc_id}#{c.chunk_id}): {c.snippet}")
    first = answer.timings.get("first_token_ms")
    console.print(
        f"[dim]first token {first:.0f} ms, total {answer.timings['total_ms']:.0f} ms[/dim]"
        if first is not None
        else f"[dim]total {answer.timings['total_ms']:.0f} ms[/dim]"
    )
