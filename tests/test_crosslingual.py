"""Cross-lingual candidates (engine/crosslingual.py): the LLM translator and the translated pool, with fakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from zhiku.engine.crosslingual import LLMTranslator
from zhiku.engine.kb import KnowledgeBase

ENGLISH = [
    "Glaciers form where snow piles up faster than it melts and is pressed into ice.",
    "The harbour board kept ledgers of every ship that docked in the port.",
    "Photosynthesis turns light, water and carbon dioxide into sugar.",
    "The school board met every month in the town hall.",
    "Volcanoes erupt when magma rises through cracks in the crust.",
    "The water company laid new pipes under the main street.",
    "Bees carry pollen from flower to flower.",
    "The railway reached the valley in 1891.",
    "Tides rise and fall twice a day on most coasts.",
    "The museum opened a new wing for maps and photographs.",
    "Chess openings are studied by club players.",
    "The bridge was painted red to resist rust.",
]
CHINESE = ["长城大部分是明朝修建的。", "熊猫主要吃竹子。"]
QUESTION = "冰川是怎样形成的？"
TRANSLATION = "How do glaciers form from snow?"


class Replies:
    """A stand-in chat model: fixed replies in turn; records the prompts."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.prompts: list[list[dict[str, str]]] = []

    def complete(self, messages: list[dict[str, str]], **options: Any) -> str:
        self.prompts.append(messages)
        return self.replies.pop(0)


class Table:
    """A translator from a fixed table; counts its calls."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table
        self.calls = 0

    def translate(self, text: str, target: str) -> str | None:
        self.calls += 1
        return self.table.get(text)


def test_the_translator_prompts_with_examples_and_caches() -> None:
    model = Replies(TRANSLATION + "\n")
    translator = LLMTranslator(lambda: model)
    assert translator.translate(QUESTION, "en") == TRANSLATION
    assert translator.translate(QUESTION, "en") == TRANSLATION
    assert len(model.prompts) == 1
    prompt = model.prompts[0]
    assert prompt[-1]["content"].endswith(QUESTION) and "English" in prompt[-1]["content"]
    assert any(m["role"] == "assistant" for m in prompt)  # worked examples come first


def test_a_reply_in_the_wrong_language_is_no_translation() -> None:
    """A small model sometimes answers in the question's language: that reply is not searched."""
    model = Replies("冰川由积雪形成。", "")
    translator = LLMTranslator(lambda: model)
    assert translator.translate(QUESTION, "en") is None
    assert translator.translate(QUESTION, "en") is None  # cached: the model is not asked twice
    assert translator.translate("熊猫吃什么？", "en") is None  # an empty reply
    assert len(model.prompts) == 2


@pytest.fixture
def kb(tmp_path: Path):  # type: ignore[no-untyped-def]
    with KnowledgeBase(tmp_path, "x", embed__backend="fake") as kb:
        kb.add_texts(ENGLISH + CHINESE, ids=[f"en{i}" for i in range(len(ENGLISH))] + ["zh0", "zh1"])
        kb.embedder.cross_lingual = True  # type: ignore[misc]  # the fake stands in for a multilingual model
        # The dictionary would find the answer on its own (tests/test_dictionary.py).
        kb.settings.retrieval.dictionary_translation = False
        yield kb


def test_the_translated_question_finds_the_other_language_answer(kb: KnowledgeBase) -> None:
    # The fake's vectors are hashes: the question's own vector does not find the answer.
    assert "en0" not in [h.doc_id for h in kb.search(QUESTION, top_k=3)]
    translator = Table({QUESTION: TRANSLATION})
    kb.searcher.translator = translator
    kb.settings.retrieval.translate_queries = True
    assert "en0" in [h.doc_id for h in kb.search(QUESTION, top_k=3)]
    assert translator.calls == 1


def test_no_translation_without_the_setting_or_a_multilingual_embedder(kb: KnowledgeBase) -> None:
    translator = Table({QUESTION: TRANSLATION})
    kb.searcher.translator = translator
    kb.search(QUESTION, top_k=3)
    assert translator.calls == 0  # translate_queries is off by default
    kb.settings.retrieval.translate_queries = True
    kb.embedder.cross_lingual = False  # type: ignore[misc]
    assert "en0" not in [h.doc_id for h in kb.search(QUESTION, top_k=3)]
    assert translator.calls == 0


def test_an_untranslatable_question_keeps_the_vector_pool(kb: KnowledgeBase) -> None:
    kb.settings.retrieval.translate_queries = True
    kb.searcher.translator = Table({})
    with_pool = [h.doc_id for h in kb.search(QUESTION, top_k=3)]
    kb.settings.retrieval.translate_queries = False
    assert with_pool == [h.doc_id for h in kb.search(QUESTION, top_k=3)]
