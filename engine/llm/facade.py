"""KnowledgeBase's LLM half: the abilities grounded in one collection, with real signatures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from zhiku.engine.aio import run_in_thread

if TYPE_CHECKING:
    from zhiku.engine.engine import Engine
    from zhiku.engine.kb import KnowledgeBase
    from zhiku.engine.llm.abilities import LLMService
    from zhiku.engine.llm.answer import Answer, AskEvent
    from zhiku.engine.llm.ask import History
    from zhiku.engine.llm.classify import Classification, Example, Labels
    from zhiku.engine.llm.extract import Extraction, Schema


class LLMFacade:
    """Ask, summarize, extract, classify, rewrite and generate over this collection (needs `engine`)."""

    engine: "Engine"

    @property
    def llm(self) -> "LLMService":
        """The LLM service grounded in this collection (the engine's one; the model loads on first use)."""
        kb: KnowledgeBase = self  # type: ignore[assignment]  # only KnowledgeBase mixes this in
        return self.engine.llm(kb)

    def ask(
        self,
        question: str,
        history: "History | None" = None,
        stream: bool = False,
        filters: Mapping[str, Any] | None = None,
        top_k: int | None = None,
    ) -> "Answer | Iterator[AskEvent]":
        """A grounded Answer with checked citations, or with stream=True an iterator of events."""
        if stream:
            return self.llm.ask_stream(question, history, filters=filters, top_k=top_k)
        return self.llm.ask(question, history, filters=filters, top_k=top_k)

    aask = run_in_thread(ask)

    def summarize(
        self,
        texts: str | Sequence[str] | None = None,
        length: str = "short",
        doc_ids: Sequence[str] = (),
        query: str | None = None,
        top_k: int = 10,
        filters: Mapping[str, Any] | None = None,
    ) -> str:
        """Summarize texts, stored documents and/or search results."""
        return self.llm.summarize(texts, length, doc_ids, query, top_k, filters)

    def extract(self, text: str, schema: "Schema", retries: int | None = None) -> "Extraction":
        """Extract JSON valid against a JSON Schema or pydantic model."""
        return self.llm.extract(text, schema, retries)

    def classify(
        self, text: str, labels: "Labels", examples: Sequence["Example"] = (), multi_label: bool = False
    ) -> "Classification":
        """Classify a text into labels with a confidence."""
        return self.llm.classify(text, labels, examples, multi_label)

    def rewrite(self, text: str, style: str = "polish", target: str | None = None) -> str:
        """Polish, correct, simplify or translate a text."""
        return self.llm.rewrite(text, style, target)

    def generate(
        self, prompt: str, grounded: bool = False, top_k: int = 5, filters: Mapping[str, Any] | None = None
    ) -> str:
        """Free generation, optionally grounded in this collection's search results."""
        return self.llm.generate(prompt, grounded, top_k, filters)
