"""`zhiku ask` and the ability commands, run through CliRunner on the fake backends."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from zhiku.cli import llm as llm_cli
from zhiku.cli.ask import ask
from zhiku.engine.kb import KnowledgeBase

runner = CliRunner()


@pytest.fixture
def app():
    app = typer.Typer()
    app.command("ask")(ask)
    for command in llm_cli.COMMANDS:
        app.command(command.__name__)(command)
    return app


@pytest.fixture(autouse=True)
def fake_backends(monkeypatch):
    """Every command runs on the fake embedder and the scripted LLM."""
    monkeypatch.setenv("ZHIKU_EMBED__BACKEND", "fake")
    monkeypatch.setenv("ZHIKU_LLM__BACKEND", "fake")


@pytest.fixture
def data_dir(tmp_path):
    with KnowledgeBase(tmp_path, "docs") as kb:
        kb.add_texts(
            [
                "The Denver Broncos defeated the Carolina Panthers to win Super Bowl 50.",
                "Paris is the capital of France.",
            ],
            ids=["sb50", "paris"],
            metadatas=[{"title": "Super Bowl 50"}, {"title": "Paris"}],
        )
    return tmp_path


def test_ask_streams_an_answer_and_lists_sources(app, data_dir):
    result = runner.invoke(app, ["ask", "Who won Super Bowl 50?", "-c", "docs", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert "Denver Broncos" in result.stdout and "[1]" in result.stdout
    assert "sb50" in result.output


def test_ask_json_and_refusal(app, data_dir):
    result = runner.invoke(app, ["ask", "Who won Super Bowl 50?", "-c", "docs", "--json", "--data-dir", str(data_dir)])
    body = json.loads(result.stdout)
    assert body["citations"][0]["doc_id"] == "sb50" and body["refused"] is False
    result = runner.invoke(app, ["ask", "Why is the sky blue?", "-c", "docs", "--data-dir", str(data_dir)])
    assert result.exit_code == 0 and "Not found in the documents." in result.stdout


def test_ask_unknown_collection_is_a_clean_error(app, data_dir):
    result = runner.invoke(app, ["ask", "q", "-c", "nope", "--data-dir", str(data_dir)])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_ability_commands_on_the_fake_backend(app, data_dir, tmp_path):
    # The fake backend echoes the last message, which proves the text reached the prompt.
    result = runner.invoke(app, ["rewrite", "teh cat", "--style", "correct"])
    assert result.exit_code == 0 and "teh cat" in result.stdout
    result = runner.invoke(app, ["summarize", "-"], input="Long text from stdin.")
    assert "Long text from stdin." in result.stdout
    result = runner.invoke(app, ["summarize", "--doc", "paris", "-c", "docs", "--data-dir", str(data_dir)])
    assert "Paris is the capital" in result.stdout
    result = runner.invoke(app, ["generate", "Who won?", "--grounded", "-c", "docs", "--data-dir", str(data_dir)])
    assert result.exit_code == 0
    result = runner.invoke(app, ["classify", "cats", "-l", "a", "-l", "cats=animals"])
    assert json.loads(result.stdout)["labels"] == ["cats"]


def test_extract_command_reports_invalid_output_and_bad_schema(app, tmp_path):
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "required": ["x"]}))
    result = runner.invoke(app, ["extract", "no json here", "--schema", str(schema), "--retries", "0"])
    assert result.exit_code == 1 and "no valid JSON" in result.output
    schema.write_text(json.dumps({"type": "object"}))
    result = runner.invoke(app, ["extract", "anything", "--schema", str(schema)])
    assert result.exit_code == 0 and isinstance(json.loads(result.stdout), dict)
    result = runner.invoke(app, ["extract", "t", "--schema", str(tmp_path / "missing.json")])
    assert result.exit_code == 2


def test_generate_grounded_needs_a_collection(app):
    assert runner.invoke(app, ["generate", "x", "--grounded"]).exit_code == 2
