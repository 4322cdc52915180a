"""The distribution ships one namespace, `zhiku`, and a working console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import zhiku
from zhiku.cli import app


def test_public_api_is_reexported() -> None:
    from zhiku.engine.kb import KnowledgeBase
    from zhiku.library import KnowledgeBase as LibraryKnowledgeBase

    # The library's KnowledgeBase is the engine's plus file ingest (engine never imports ingest).
    assert zhiku.KnowledgeBase is LibraryKnowledgeBase and issubclass(LibraryKnowledgeBase, KnowledgeBase)
    assert set(zhiku.__all__) >= {"KnowledgeBase", "Hit", "Settings"}


def test_no_generic_top_level_packages(tmp_path: Path) -> None:
    # Run from an empty directory so the repo root is not on sys.path.
    code = (
        "import importlib.util as u, zhiku.engine, zhiku.api, zhiku.eval, zhiku.ingest\n"
        "print([n for n in ('api', 'engine', 'ingest', 'eval', 'bench', 'tests') if u.find_spec(n)])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_cli_help_lists_command_groups() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("ingest", "search", "collections"):
        assert command in result.output
