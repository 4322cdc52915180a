"""The LLM abilities in one object: ask, summarize, extract, classify, rewrite, generate.

`build_llm` is the one place an `LLMService` is wired from settings; the
engine calls it (`Engine.llm`, cached per collection) and the library
(`KnowledgeBase.llm`), the CLI and the API all get theirs from the engine.
Each ability has a streaming form where that makes sense; the plain form is
derived from it, never a second body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from zhiku.engine.llm.answer import Answer, AskEvent
from zhiku.engine.llm.ask import AskChain, History, parents_from
from zhiku.engine.llm.base import Generator
from zhiku.engine.llm.chat_model import GeneratorChatModel
from zhiku.engine.llm.classify import Classification, Example, Labels, classify
from zhiku.engine.llm.extract import Extraction, Schema, extract
from zhiku.engine.settings import AskSettings
from zhiku.engine.llm.query_rewrite import Retriever
from zhiku.engine.llm.rewrite import generate_stream, rewrite_stream
from zhiku.engine.llm.summarize import Summarizer
from zhiku.engine.errors import ConfigError
from zhiku.engine.llm.rerank import Reranker, build_reranker
from zhiku.engine.llm.span import SentenceSimilarity
from zhiku.engine.embedders.base import Embedder
from zhiku.engine.settings import Settings
from zhiku.engine.types import Hit

if TYPE_CHECKING:
    from zhiku.engine.kb import KnowledgeBase


class LLMService:
    """Abilities over one generator and (optionally) one retriever."""

    def __init__(
        self,
        generator: Generator,
        retriever: Retriever | None = None,
        settings: AskSettings | None = None,
        reranker: Reranker | None = None,
        get_document: Callable[[str], Any] | None = None,
        dense_floors: Mapping[str, float] | None = None,
        similarity: SentenceSimilarity | None = None,
    ) -> None:
        self.generator = generator
        self.model = GeneratorChatModel(generator=generator)
        self.retriever = retriever
        self.settings = settings or AskSettings()
        self.get_document = get_document
        self._label_priors: dict[str, list[float]] = {}  # classify calibration, per label set
        self._ask = (
            AskChain(
                self.model,
                retriever,
                self.settings,
                reranker,
                parents_from(get_document) if get_document else None,
                dense_floors,
                similarity,
            )
            if retriever is not None
            else None
        )

    # -- ask -------------------------------------------------------------------------

    def ask_stream(
        self,
        question: str,
        history: History | None = None,
        filters: Mapping[str, Any] | None = None,
        top_k: int | None = None,
    ) -> Iterator[AskEvent]:
        """Events: sources, tokens, then done with the Answer."""
        return self._chain().stream(question, history, filters=filters, top_k=top_k)

    def ask(
        self,
        question: str,
        history: History | None = None,
        filters: Mapping[str, Any] | None = None,
        top_k: int | None = None,
    ) -> Answer:
        """A grounded answer with checked citations (or a refusal)."""
        return self._chain().run(question, history, filters=filters, top_k=top_k)

    def _chain(self) -> AskChain:
        if self._ask is None:
            raise ConfigError("ask needs a retriever (use KnowledgeBase.llm)")
        return self._ask

    # -- other abilities -----------------------------------------------------------------

    def summarize_stream(
        self,
        texts: str | Sequence[str] | None = None,
        length: str = "short",
        doc_ids: Sequence[str] = (),
        query: str | None = None,
        top_k: int = 10,
        filters: Mapping[str, Any] | None = None,
    ) -> Iterator[str]:
        """Summary tokens for texts, stored documents and/or search results (map-reduce when long)."""
        parts = [texts] if isinstance(texts, str) else list(texts or [])
        parts += self.summary_inputs(doc_ids, query, top_k, filters)
        return Summarizer(self.model, chunk_tokens=self.settings.summary_chunk_tokens).stream(parts, length)

    def summarize(
        self,
        texts: str | Sequence[str] | None = None,
        length: str = "short",
        doc_ids: Sequence[str] = (),
        query: str | None = None,
        top_k: int = 10,
        filters: Mapping[str, Any] | None = None,
    ) -> str:
        """A summary of texts, stored documents and/or search results."""
        return "".join(self.summarize_stream(texts, length, doc_ids, query, top_k, filters)).strip()

    def summary_inputs(
        self,
        doc_ids: Sequence[str] = (),
        query: str | None = None,
        top_k: int = 10,
        filters: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """Texts of stored documents and/or of a search's hits, ready for summarize."""
        texts: list[str] = []
        if doc_ids:
            if self.get_document is None:
                raise ConfigError("summarizing documents needs a knowledge base")
            texts += [self.get_document(d).text for d in doc_ids]
        if query:
            if self.retriever is None:
                raise ConfigError("summarizing search results needs a retriever")
            hits: list[Hit] = self.retriever(query, top_k=top_k, filters=filters)
            texts += [h.text for h in hits]
        return texts

    def extract(self, text: str, schema: Schema, retries: int | None = None) -> Extraction:
        """JSON matching a JSON Schema or pydantic model, retried with the validation error."""
        retries = self.settings.extract_retries if retries is None else retries
        return extract(self.model, text, schema, retries)

    def classify(
        self, text: str, labels: Labels, examples: Sequence[Example] = (), multi_label: bool = False
    ) -> Classification:
        """The label(s) for a text, with a confidence."""
        return classify(self.model, text, labels, examples, multi_label, self._label_priors)

    def rewrite_stream(self, text: str, style: str = "polish", target: str | None = None) -> Iterator[str]:
        """Tokens of the polished / corrected / simplified / translated text."""
        return rewrite_stream(self.model, text, style, target, self.generator.defaults.max_tokens)

    def rewrite(self, text: str, style: str = "polish", target: str | None = None) -> str:
        """The rewritten text."""
        return "".join(self.rewrite_stream(text, style, target)).strip()

    def generate_stream(
        self, prompt: str, grounded: bool = False, top_k: int = 5, filters: Mapping[str, Any] | None = None
    ) -> Iterator[str]:
        """Tokens of a free reply, or one grounded in retrieval."""
        if grounded and self.retriever is None:
            raise ConfigError("grounded generation needs a retriever")
        return generate_stream(
            self.model,
            prompt,
            self.retriever if grounded else None,
            top_k,
            filters,
            self.generator.defaults.max_tokens,
            self.settings.context_tokens,
        )

    def generate(
        self, prompt: str, grounded: bool = False, top_k: int = 5, filters: Mapping[str, Any] | None = None
    ) -> str:
        """A free (or grounded) reply."""
        return "".join(self.generate_stream(prompt, grounded, top_k, filters)).strip()


def build_llm(settings: Settings, generator: Generator, kb: "KnowledgeBase | None" = None) -> LLMService:
    """The abilities over `generator`, grounded in `kb` when one is given (with the configured reranker)."""
    ask = settings.ask
    reranker = build_reranker(ask.rerank, ask.rerank_model, settings.llm.threads)
    if kb is None:
        return LLMService(generator, None, ask, reranker)
    return LLMService(
        generator, kb.search, ask, reranker, kb.get_document, kb.embedder.relevance_floors,
        embedding_similarity(kb.embedder),
    )


def embedding_similarity(embedder: Embedder) -> SentenceSimilarity:
    """The question's similarity to each text under `embedder`, as the collection's search scores it."""

    def similarity(question: str, texts: Sequence[str]) -> list[float]:
        return [float(x) for x in embedder.similarity(question, list(texts))]

    return similarity
