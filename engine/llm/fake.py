"""A scripted generator for unit tests and offline demos: no weights, deterministic.

Give it a list of replies (used in order) or a function of the messages. With
neither, it answers grounded prompts by quoting the first numbered source with
a citation, and echoes anything else, so the CLI works end to end offline.
"""

from __future__ import annotations

import re
from typing import Callable, Iterator, Sequence

from zhiku.engine.llm.base import GenOptions, Generator, Message

Script = Sequence[str] | Callable[[Sequence[Message]], str]

_PIECE = re.compile(r"\s*\S+|\s+")
# A source is its header line ("[1] title / section", maybe just "[1]"), then its text.
_SOURCE = re.compile(r"^\[1\][^\n]*\n(.+?)(?:\n\n|\n\[2\]|$)", re.M | re.S)


def default_reply(messages: Sequence[Message]) -> str:
    """Quote the first sentence of source [1] if there is one, else echo the last message."""
    text = messages[-1]["content"] if messages else ""
    found = _SOURCE.search(text)
    if found:
        sentence = re.split(r"(?<=[.!?。！？])\s*", found.group(1).strip())[0]
        return f"{sentence} [1]"
    return text


class ScriptedGenerator(Generator):
    """Replies from a script; records every call so tests can inspect prompts."""

    def __init__(
        self,
        script: Script | None = None,
        context_window: int = 4096,
        scorer: Callable[[Sequence[Message], Sequence[str]], list[float]] | None = None,
    ) -> None:
        self.model_id = "fake-scripted"
        self._scorer = scorer
        self.context_window = context_window
        self._script = script
        self._next = 0
        self.calls: list[tuple[list[Message], GenOptions]] = []

    def _reply(self, messages: Sequence[Message]) -> str:
        if self._script is None:
            return default_reply(messages)
        if callable(self._script):
            return self._script(messages)
        if self._next >= len(self._script):
            raise AssertionError(f"script exhausted after {self._next} replies")
        reply = self._script[self._next]
        self._next += 1
        return reply

    def _stream(self, messages: Sequence[Message], options: GenOptions) -> Iterator[str]:
        self.calls.append(([dict(m) for m in messages], options))
        pieces = _PIECE.findall(self._reply(messages))
        # Honour max_tokens roughly (one piece ~ one token) so truncation paths get exercised.
        yield from pieces[: options.max_tokens]

    def score_choices(self, messages: Sequence[Message], choices: Sequence[str]) -> list[float] | None:
        return self._scorer(messages, choices) if self._scorer else None
