"""The generator interface: a backend implements `_stream`; the base builds the rest.

Messages are plain `{"role": ..., "content": ...}` dicts (OpenAI chat shape), so
every backend, the LangChain adapter and the API speak the same format.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any, Iterator, Sequence

from zhiku.engine.llm.cancel import check_cancelled

Message = dict[str, str]

_WORDISH = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\s\u3400-\u9fff\uf900-\ufaff]+")


@dataclass(frozen=True, slots=True)
class GenOptions:
    """Per-call decoding options.

    `json_schema` describes the JSON wanted; backends whose constrained
    decoding is cheap always use it, slow ones (llama.cpp grammars) only when
    `constrain` is set, which extract does on its last attempt.
    """

    max_tokens: int = 512
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = None
    constrain: bool = False

    def with_(self, **changes: Any) -> "GenOptions":
        """A copy with some fields changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


class Generator(ABC):
    """Streams text for chat messages. Construction is cheap; `warm_up()` loads weights."""

    model_id: str = "generator"
    context_window: int = 4096
    defaults: GenOptions = GenOptions()

    def warm_up(self) -> None:
        """Load weights now rather than on first use."""

    @abstractmethod
    def _stream(self, messages: Sequence[Message], options: GenOptions) -> Iterator[str]:
        """Yield text pieces of the reply, in order."""

    def count_tokens(self, text: str) -> int:
        """Tokens the model would see; backends with a tokenizer override this."""
        # Roughly one token per CJK character or per 0.75 words elsewhere.
        return int(len(_WORDISH.findall(text)) * 1.3) + 1

    def stream(
        self, messages: Sequence[Message], options: GenOptions | None = None, **overrides: Any
    ) -> Iterator[str]:
        """Yield the reply piece by piece, cut at the first stop string."""
        opts = (options or self.defaults).with_(**overrides)
        check_cancelled()
        pieces = self._stream(messages, opts)
        try:
            for piece in _cut_at_stop(pieces, opts.stop) if opts.stop else pieces:
                # A cancelled request stops here; closing `pieces` stops the backend's loop.
                check_cancelled()
                yield piece
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()

    def complete(
        self, messages: Sequence[Message], options: GenOptions | None = None, **overrides: Any
    ) -> str:
        """The whole reply as one string."""
        return "".join(self.stream(messages, options, **overrides))

    def score_choices(self, messages: Sequence[Message], choices: Sequence[str]) -> list[float] | None:
        """Log-likelihood of each choice as the reply, or None where the backend cannot say."""
        return None

    def describe(self) -> dict[str, object]:
        """What the API reports about this generator."""
        return {"model_id": self.model_id, "context_window": self.context_window}


def _cut_at_stop(pieces: Iterator[str], stops: Sequence[str]) -> Iterator[str]:
    # Hold back just enough text that a stop string split across pieces is still caught.
    hold = max(len(s) for s in stops) - 1
    buffer = ""
    for piece in pieces:
        buffer += piece
        cut = min((i for i in (buffer.find(s) for s in stops) if i >= 0), default=-1)
        if cut >= 0:
            if buffer[:cut]:
                yield buffer[:cut]
            return
        if len(buffer) > hold:
            emit, buffer = buffer[: len(buffer) - hold], buffer[len(buffer) - hold :]
            if emit:
                yield emit
    if buffer:
        yield buffer
