"""Summaries of a text or many: one call when it fits, map-reduce beyond the window."""

from __future__ import annotations

from typing import Iterator, Sequence

from langchain_core.output_parsers import StrOutputParser
from langchain_text_splitters import RecursiveCharacterTextSplitter

from zhiku.engine.errors import InvalidRequest
from zhiku.engine.llm.chat_model import GeneratorChatModel, stream_text
from zhiku.engine.llm.templates import Lang, detect_language, load_prompt

LENGTHS: dict[Lang, dict[str, str]] = {
    "en": {"short": "two or three sentences", "medium": "one paragraph", "long": "several paragraphs"},
    "zh": {"short": "两三句话", "medium": "一段话", "long": "几段话"},
}


class Summarizer:
    """Summarize with LCEL chains; `stream` is the body, `run` joins it."""

    def __init__(self, model: GeneratorChatModel, max_tokens: int = 256, chunk_tokens: int | None = None) -> None:
        self.model = model
        self.max_tokens = max_tokens
        window = model.generator.context_window
        # Room for the instructions and the reply; what is left is for the text.
        self.chunk_tokens = chunk_tokens or max(128, window - max_tokens - 200)

    def run(self, texts: str | Sequence[str], length: str = "short", lang: Lang | None = None) -> str:
        """The summary as one string."""
        return "".join(self.stream(texts, length, lang)).strip()

    def stream(self, texts: str | Sequence[str], length: str = "short", lang: Lang | None = None) -> Iterator[str]:
        """Summary tokens; intermediate map/reduce calls are not streamed, the last one is."""
        parts = [texts] if isinstance(texts, str) else [t for t in texts if t and t.strip()]
        if not parts or not any(p.strip() for p in parts):
            raise InvalidRequest("nothing to summarize")
        lang = lang or detect_language(" ".join(parts)[:2000])
        if length not in LENGTHS[lang]:
            raise InvalidRequest(f"length must be one of {sorted(LENGTHS[lang])}")
        words = LENGTHS[lang][length]
        text = "\n\n".join(parts)
        prompt = "summarize"
        while self._tokens(text) > self.chunk_tokens:
            # Map: summarize each window-sized piece; reduce: summarize the summaries.
            pieces = self._split(text)
            if len(pieces) <= 1:  # cannot split further; let truncation happen in the model
                break
            text = "\n\n".join(self._chain(prompt, lang).invoke({"text": p, "length": words}).strip() for p in pieces)
            prompt = "summarize_reduce"
        yield from stream_text(self._chain(prompt, lang), {"text": text, "length": words})

    def _tokens(self, text: str) -> int:
        return self.model.generator.count_tokens(text)

    def _split(self, text: str) -> list[str]:
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=self.chunk_tokens,
            chunk_overlap=0,
            length_function=self._tokens,
            separators=["\n\n", "\n", "。", ". ", " ", ""],
        )
        return splitter.split_text(text)

    def _chain(self, prompt: str, lang: Lang):  # type: ignore[no-untyped-def]
        return load_prompt(prompt, lang) | self.model.bind(max_tokens=self.max_tokens) | StrOutputParser()
