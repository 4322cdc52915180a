"""A LangChain chat model over any zhiku Generator, so chains are plain LCEL.

Only `_stream` is real; `_generate` is derived from it (one body, two shapes).
Decoding options pass through `.bind(max_tokens=..., json_schema=...)`.
"""

from __future__ import annotations

from typing import Any, Iterator

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel, generate_from_stream
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from zhiku.engine.llm.base import Generator, Message

_ROLES = {"system": "system", "human": "user", "ai": "assistant", "chat": "user"}
_OPTION_KEYS = ("max_tokens", "temperature", "json_schema", "constrain")


def to_messages(messages: list[BaseMessage]) -> list[Message]:
    """LangChain messages to OpenAI-shaped dicts."""
    return [{"role": _ROLES.get(m.type, "user"), "content": str(m.content)} for m in messages]


class GeneratorChatModel(BaseChatModel):
    """Adapts a Generator to LangChain's chat-model interface."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    generator: Generator

    @property
    def _llm_type(self) -> str:
        return f"zhiku-{self.generator.model_id}"

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        overrides = {k: kwargs[k] for k in _OPTION_KEYS if k in kwargs}
        if stop:
            overrides["stop"] = tuple(stop)
        empty = True
        for piece in self.generator.stream(to_messages(messages), **overrides):
            empty = False
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        if empty:  # a model may stop at once; LangChain needs at least one chunk
            yield ChatGenerationChunk(message=AIMessageChunk(content=""))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))


def stream_text(chain: Any, inputs: dict[str, Any]) -> Iterator[str]:
    """Stream an LCEL chain's text, skipping the empty chunks LangChain adds."""
    for piece in chain.stream(inputs):
        if piece:
            yield piece
