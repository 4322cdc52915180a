"""The LLM is wired once: the library, the API and the CLI share the engine's generator and abilities."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from api_support import fake_settings
from zhiku.api.services import Services
from zhiku.cli import app
from zhiku.engine.engine import Engine
from zhiku.engine.llm.fake import ScriptedGenerator


def test_library_and_api_share_one_service_over_one_generator(tmp_path: Path) -> None:
    engine = Engine(fake_settings(tmp_path))
    kb = engine.kb("c", create=True)
    services = Services(engine.settings, engine=engine)
    assert kb.llm is engine.llm(kb) is services.llm("c")
    assert services.llm(None) is engine.llm() and services.llm(None) is not kb.llm
    assert kb.llm.generator is services.llm(None).generator is engine.generator
    # A collection dropped and made again gets a service over its new knowledge base.
    services.drop("c")
    again = engine.kb("c", create=True)
    assert again.llm is not kb.llm and again.llm.retriever == again.search
    services.close(own_engine=True)


def test_a_given_generator_replaces_the_configured_one(tmp_path: Path) -> None:
    engine = Engine(fake_settings(tmp_path))
    before = engine.llm()
    scripted = ScriptedGenerator(["hi"])
    Services(engine.settings, engine=engine, generator=scripted)
    assert engine.generator is scripted and engine.llm() is not before
    assert engine.llm().generate("hello") == "hi"
    engine.close()


def test_cli_uses_the_engine_service(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ZHIKU_CONFIG", str(tmp_path / "absent.toml"))
    result = CliRunner().invoke(app, ["rewrite", "some text", "--llm-backend", "fake", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
