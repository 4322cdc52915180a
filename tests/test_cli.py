"""The core CLI commands through typer's CliRunner, on the fake embedder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zhiku.cli import app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ZHIKU_EMBED__BACKEND", "fake")
    monkeypatch.setenv("ZHIKU_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ZHIKU_CONFIG", str(tmp_path / "none.toml"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "fox.md").write_text("# Foxes\n\nThe quick brown fox jumps over the lazy dog.")
    (docs / "beijing.txt").write_text("北京是中华人民共和国的首都。", encoding="utf-8")
    (docs / "corpus.jsonl").write_text(
        json.dumps({"_id": "p1", "title": "Python", "text": "Python emphasises readable code."}) + "\n"
    )
    return docs


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_ingest_search_collections_roundtrip(env: Path) -> None:
    run("ingest", str(env), "--collection", "kb")
    hits = json.loads(run("search", "quick fox", "-c", "kb", "--json"))["hits"]
    assert hits[0]["doc_id"] == "fox.md"
    assert json.loads(run("search", "首都", "-c", "kb", "--mode", "bm25", "--json"))["hits"][0]["doc_id"] == "beijing.txt"
    assert json.loads(run("search", "readable", "-c", "kb", "--json", "-k", "1"))["hits"][0]["doc_id"] == "p1"
    listed = json.loads(run("collections", "list", "--json"))
    assert [(c["name"], c["documents"]) for c in listed] == [("kb", 3)]
    info = json.loads(run("collections", "info", "kb"))
    assert info["manifest"]["embedder"]["model_id"] == "fake-hash-32"
    run("collections", "delete", "kb", "--yes")
    assert json.loads(run("collections", "list", "--json")) == []


def test_search_errors_are_messages_not_tracebacks(env: Path) -> None:
    result = CliRunner().invoke(app, ["search", "x", "-c", "missing"])
    assert result.exit_code == 1 and "does not exist" in result.output
    run("ingest", str(env), "--collection", "kb")
    result = CliRunner().invoke(app, ["search", "x", "-c", "kb", "--mode", "magic"])
    assert result.exit_code == 1 and "mode must be one of" in result.output
    result = CliRunner().invoke(app, ["search", "x", "-c", "kb", "--filter", "novalue"])
    assert result.exit_code == 2 and "key=value" in result.output
