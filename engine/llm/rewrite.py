"""Rewrite (polish, correct, simplify, translate) and free or grounded generation."""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

from langchain_core.output_parsers import StrOutputParser

from zhiku.engine.errors import InvalidRequest
from zhiku.engine.llm.chat_model import GeneratorChatModel, stream_text
from zhiku.engine.llm.context import format_sources, pack_sources
from zhiku.engine.llm.query_rewrite import Retriever
from zhiku.engine.llm.templates import Lang, detect_language, load_prompt

LANGUAGE_NAMES: dict[str, dict[Lang, str]] = {
    "en": {"en": "English", "zh": "英文"},
    "zh": {"en": "Chinese (simplified)", "zh": "简体中文"},
    "ja": {"en": "Japanese", "zh": "日文"},
    "fr": {"en": "French", "zh": "法文"},
    "de": {"en": "German", "zh": "德文"},
    "es": {"en": "Spanish", "zh": "西班牙文"},
}

# Instruction per style, in the language of the text being rewritten.
STYLES: dict[str, Callable[[Lang, str | None], str]] = {
    "polish": lambda lang, _: "Improve the style and flow of the text."
    if lang == "en"
    else "润色文本，使其更通顺、更得体。",
    "correct": lambda lang, _: "Fix spelling, grammar and punctuation; change nothing else."
    if lang == "en"
    else "改正错别字、语法和标点，其余不变。",
    "simplify": lambda lang, _: "Rewrite the text in simpler words and shorter sentences."
    if lang == "en"
    else "用更简单的词语和更短的句子改写文本。",
    "translate": lambda lang, target: f"Translate the text into {_language(target, 'en')}."
    if lang == "en"
    else f"把文本翻译成{_language(target, 'zh')}。",
}


def _language(code: str | None, lang: Lang) -> str:
    if not code:
        raise InvalidRequest("translate needs a target language (e.g. 'en', 'zh')")
    return LANGUAGE_NAMES.get(code.lower(), {}).get(lang, code)


def rewrite_stream(
    model: GeneratorChatModel, text: str, style: str = "polish", target: str | None = None, max_tokens: int = 512
) -> Iterator[str]:
    """Tokens of the rewritten text."""
    if not text or not text.strip():
        raise InvalidRequest("nothing to rewrite")
    if style not in STYLES:
        raise InvalidRequest(f"style must be one of {sorted(STYLES)}")
    lang = detect_language(text)
    instruction = STYLES[style](lang, target)
    chain = load_prompt("rewrite", lang) | model.bind(max_tokens=max_tokens) | StrOutputParser()
    yield from stream_text(chain, {"instruction": instruction, "text": text})


def generate_stream(
    model: GeneratorChatModel,
    prompt: str,
    retriever: Retriever | None = None,
    top_k: int = 5,
    filters: Mapping[str, Any] | None = None,
    max_tokens: int = 512,
    context_tokens: int = 1500,
) -> Iterator[str]:
    """Tokens of a free reply, or one grounded in the retriever's top hits."""
    if not prompt or not prompt.strip():
        raise InvalidRequest("prompt must be a non-empty string")
    lang = detect_language(prompt)
    inputs: dict[str, Any] = {"prompt": prompt}
    name = "generate"
    if retriever is not None:
        hits = retriever(prompt, top_k=top_k, filters=filters)
        sources = pack_sources(hits, context_tokens, model.generator.count_tokens, max_sources=top_k)
        if sources:
            inputs["sources"] = format_sources(sources)
            name = "generate_grounded"
    chain = load_prompt(name, lang) | model.bind(max_tokens=max_tokens) | StrOutputParser()
    yield from stream_text(chain, inputs)
