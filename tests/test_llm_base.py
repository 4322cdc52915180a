"""Generator interface, registry, LangChain adapter, OpenAI backend and prompt files."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from zhiku.engine.errors import ConfigError, ModelUnavailable, Overloaded
from zhiku.engine.llm import GENERATORS, GenOptions, build_generator
from zhiku.engine.llm.base import _cut_at_stop
from zhiku.engine.llm.chat_model import GeneratorChatModel
from zhiku.engine.llm.fake import ScriptedGenerator, default_reply
from zhiku.engine.models import resolve_gguf
from zhiku.engine.llm.openai_compat import OpenAIGenerator
from zhiku.engine.llm.templates import LANGS, PROMPT_DIR, detect_language, load_prompt
from zhiku.engine.settings import LLMSettings


@pytest.mark.parametrize(
    ("pieces", "stops", "expected"),
    [
        (["hello ", "wor", "ld"], ["wor"], "hello "),
        (["ab", "cSTO", "Pdef"], ["STOP"], "abc"),
        (["no stop here"], ["XYZ"], "no stop here"),
        (["x", "y"], ["x"], ""),
        (["a", "b", "c"], ["bc", "c"], "a"),
    ],
)
def test_cut_at_stop_handles_stops_split_across_pieces(pieces, stops, expected):
    assert "".join(_cut_at_stop(iter(pieces), stops)) == expected


def test_scripted_generator_replays_in_order_and_records_calls():
    gen = ScriptedGenerator(["one two", "three"])
    assert gen.complete([{"role": "user", "content": "hi"}]) == "one two"
    assert list(gen.stream([{"role": "user", "content": "again"}])) == ["three"]
    assert gen.calls[1][0][0]["content"] == "again"
    with pytest.raises(AssertionError):
        gen.complete([{"role": "user", "content": "more"}])


def test_max_tokens_and_stop_are_honoured_by_the_base():
    gen = ScriptedGenerator(lambda m: "a b c d e f")
    assert gen.complete([], max_tokens=3) == "a b c"
    assert gen.complete([], stop=(" d",)) == "a b c"


def test_default_fake_reply_quotes_source_one_with_a_citation():
    prompt = "Sources:\n\n[1] Title\nParis is in France. More text.\n\n[2] Other\nNo.\n\nQuestion: where?"
    assert default_reply([{"role": "user", "content": prompt}]) == "Paris is in France. [1]"
    assert default_reply([{"role": "user", "content": "echo me"}]) == "echo me"


def test_registry_builds_each_backend_and_rejects_unknown():
    assert set(GENERATORS) == {"llamacpp", "transformers", "openai", "fake"}
    fake = build_generator(LLMSettings(backend="fake", max_tokens=7))
    assert isinstance(fake, ScriptedGenerator) and fake.defaults.max_tokens == 7
    # Construction is cheap: no model file is touched until warm_up.
    build_generator(LLMSettings(backend="llamacpp", model_path="/nonexistent.gguf"))
    with pytest.raises(ConfigError):
        build_generator(LLMSettings(backend="nope"))
    with pytest.raises(ConfigError):
        build_generator(LLMSettings(backend="transformers"))
    with pytest.raises(ConfigError):
        build_generator(LLMSettings(backend="openai"))


def test_missing_model_file_is_a_clear_domain_error(tmp_path):
    gen = build_generator(LLMSettings(backend="llamacpp", model_path=tmp_path / "missing.gguf"))
    with pytest.raises(ModelUnavailable, match="not found"):
        gen.warm_up()
    with pytest.raises(ModelUnavailable, match="not installed"):
        resolve_gguf(None, "surely-not-installed.gguf")
    (tmp_path / "m.gguf").write_bytes(b"x")
    assert resolve_gguf(tmp_path, "m.gguf") == tmp_path / "m.gguf"


def test_chat_model_adapter_runs_in_lcel_and_passes_options():
    gen = ScriptedGenerator(lambda m: f"{m[0]['role']}|{m[-1]['content']}")
    model = GeneratorChatModel(generator=gen)
    prompt = ChatPromptTemplate.from_messages([("system", "sys"), ("human", "say {x}")])
    chain = prompt | model.bind(max_tokens=50, json_schema={"type": "object"}) | StrOutputParser()
    assert chain.invoke({"x": "hi"}) == "system|say hi"
    assert "".join(chain.stream({"x": "yo"})) == "system|say yo"
    options = gen.calls[-1][1]
    assert options.max_tokens == 50 and options.json_schema == {"type": "object"}
    assert gen.calls[-1][0][1]["role"] == "user"


def _sse(*pieces: str) -> bytes:
    lines = [f"data: {json.dumps({'choices': [{'delta': {'content': p}}]})}\n\n" for p in pieces]
    return ("".join(lines) + "data: [DONE]\n\n").encode()


def test_openai_backend_streams_sse_and_sends_settings():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["auth"] = request.headers.get("authorization")
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, content=_sse("Hel", "lo", "!"))

    gen = OpenAIGenerator(
        "http://llm.local/v1", "m1", api_key="k", transport=httpx.MockTransport(handler)
    )
    out = list(gen.stream([{"role": "user", "content": "hi"}], GenOptions(max_tokens=9, json_schema={"type": "object"})))
    assert out == ["Hel", "lo", "!"]
    assert seen["url"] == "http://llm.local/v1/chat/completions"
    assert seen["auth"] == "Bearer k"
    assert seen["body"]["max_tokens"] == 9 and seen["body"]["model"] == "m1"
    assert seen["body"]["response_format"]["json_schema"]["schema"] == {"type": "object"}


@pytest.mark.parametrize(("status", "error"), [(429, Overloaded), (500, ModelUnavailable)])
def test_openai_backend_maps_http_errors_to_domain_errors(status, error):
    transport = httpx.MockTransport(lambda r: httpx.Response(status, text="busy"))
    gen = OpenAIGenerator("http://llm.local/v1", "m", transport=transport)
    with pytest.raises(error):
        gen.complete([{"role": "user", "content": "x"}])


def test_openai_backend_unreachable_server_is_model_unavailable():
    def handler(request):
        raise httpx.ConnectError("refused")

    gen = OpenAIGenerator("http://llm.local/v1", "m", transport=httpx.MockTransport(handler))
    with pytest.raises(ModelUnavailable, match="unreachable"):
        gen.complete([{"role": "user", "content": "x"}])


@pytest.mark.parametrize(
    ("text", "lang"),
    [("What is BM25?", "en"), ("什么是向量检索？", "zh"), ("Qdrant 的混合检索怎么用？", "zh"), ("", "en"), ("I like 茶 a lot, really", "en")],
)
def test_detect_language(text, lang):
    assert detect_language(text) == lang


def test_every_prompt_exists_in_both_languages_with_the_same_variables():
    names = {p.name.split(".")[0] for p in PROMPT_DIR.glob("*.md")}
    assert {"ask", "condense", "summarize", "summarize_reduce", "extract", "classify", "rewrite"} <= names
    for name in names:
        variables = [set(load_prompt(name, lang).input_variables) for lang in LANGS]
        assert variables[0] == variables[1], name
        for lang in LANGS:
            assert (PROMPT_DIR / f"{name}.{lang}.md").exists()
    zh_system = load_prompt("ask", "zh").format_messages(sources="s", question="q", refusal="r")[0].content
    assert re.search(r"[\u4e00-\u9fff]", zh_system)


def test_model_params_set_fields_only_while_loading() -> None:
    # llama.cpp's AMX buffers crash decoding on this project's CI kind of VM, so the
    # generator loads with extra buffer types off unless llm.extra_buffers says so.
    import llama_cpp.llama_cpp as low

    from zhiku.engine.llm.llamacpp import _model_params

    original = low.llama_model_default_params
    assert original().use_extra_bufts is True
    with _model_params(use_extra_bufts=False):
        assert low.llama_model_default_params().use_extra_bufts is False
    assert low.llama_model_default_params is original
    assert low.llama_model_default_params().use_extra_bufts is True
