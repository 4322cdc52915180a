"""The `zhiku` command line: one module per command group."""

from __future__ import annotations

import importlib
import os

import typer

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

app = typer.Typer(no_args_is_help=True, add_completion=False, help="zhiku (智库): hybrid RAG server")

# (module, attribute, name): a Typer sub-app is mounted as a group, a function as a command.
_COMMANDS = [
    ("zhiku.cli.ingest", "ingest", None),
    ("zhiku.cli.search", "search", None),
    ("zhiku.cli.collections", "app", "collections"),
    ("zhiku.cli.check", "check", None),
    ("zhiku.cli.ask", "ask", None),
    ("zhiku.cli.llm", "summarize", None),
    ("zhiku.cli.llm", "extract", None),
    ("zhiku.cli.llm", "classify", None),
    ("zhiku.cli.llm", "rewrite", None),
    ("zhiku.cli.llm", "generate", None),
    ("zhiku.cli.serve", "serve", None),
    ("zhiku.cli.mcp", "mcp", None),
    ("zhiku.cli.scale", "reindex", None),
    ("zhiku.cli.scale", "snapshot", None),
    ("zhiku.cli.scale", "restore", None),
    ("zhiku.cli.scale", "migrate", None),
    ("zhiku.cli.keys", "app", "keys"),
    ("zhiku.cli.eval", "app", "eval"),
]


def _register() -> None:
    for module_name, attr, group in _COMMANDS:
        target = getattr(importlib.import_module(module_name), attr)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=group)
        else:
            app.command(name=group or attr)(target)


_register()


def main() -> None:
    """Console-script entry point."""
    app()
