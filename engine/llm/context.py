"""Pure functions that turn search hits into numbered sources within a token budget."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from zhiku.engine.types import Hit

CountTokens = Callable[[str], int]
ParentOf = Callable[[Hit], "str | None"]


@dataclass(slots=True)
class Source:
    """One numbered source shown to the model: the hit and the text actually packed."""

    n: int
    hit: Hit
    text: str

    def header(self) -> str:
        """The line above the text: number, title and section."""
        label = " / ".join(p for p in (self.hit.title, self.hit.section) if p)
        return f"[{self.n}] {label}".rstrip()


def format_sources(sources: list[Source]) -> str:
    """Sources as the prompt shows them, separated by blank lines."""
    return "\n\n".join(f"{s.header()}\n{s.text}" for s in sources)


def pack_sources(
    hits: list[Hit],
    budget_tokens: int,
    count_tokens: CountTokens,
    parent_of: ParentOf | None = None,
    max_sources: int | None = None,
    question: str | None = None,
    source_tokens: int | None = None,
) -> list[Source]:
    """Number hits [1]..[n] in rank order until the token budget is spent.

    With `parent_of`, a hit is replaced by its parent section when that fits;
    later hits from an already packed parent are skipped. A text longer than
    `source_tokens` (or than what is left) is compressed to the sentences that
    share most words with `question`; without a question only the first
    source is cut (to a prefix), so the model always sees the best hit.
    """
    sources: list[Source] = []
    seen: set[tuple[str, str]] = set()
    left = budget_tokens
    for hit in hits:
        if max_sources is not None and len(sources) >= max_sources:
            break
        key = (hit.doc_id, hit.section) if parent_of else (hit.doc_id, hit.chunk_id)
        if key in seen:
            continue
        room = min(left, source_tokens + 8) if source_tokens else left
        text = _fit(hit, room - 8, count_tokens, parent_of, question, first=not sources)
        if text is None:
            continue
        sources.append(Source(len(sources) + 1, hit, text))
        seen.add(key)
        left -= count_tokens(text) + 8  # header and separators
        if left <= 24:
            break
    return sources


def _fit(
    hit: Hit, room: int, count_tokens: CountTokens, parent_of: ParentOf | None, question: str | None, first: bool
) -> str | None:
    """The text to pack for a hit within `room` tokens, or None when nothing useful fits."""
    if room < 8:  # not even a short sentence fits
        return None
    parent = parent_of(hit) if parent_of else None
    for text in (parent, hit.text):
        if text and count_tokens(text) <= room:
            return text
    if question:
        return compress(hit.text, question, room, count_tokens)
    return truncate_to(hit.text, room, count_tokens) if first else None


_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])")


def compress(text: str, question: str, budget_tokens: int, count_tokens: CountTokens) -> str:
    """The sentences that share most content words with the question, in text order, within budget.

    Ties go to earlier sentences; gaps between kept sentences are marked " … ".
    A best sentence longer than the budget is cut to a prefix.
    """
    from zhiku.engine.llm.citations import content_tokens

    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    if not sentences:
        return ""
    wanted = set(content_tokens(question))
    overlap = [len(wanted.intersection(content_tokens(s))) for s in sentences]
    best = max(range(len(sentences)), key=lambda i: (overlap[i], -i))
    # Best sentences first; among equals, those nearest the best one (answers sit
    # close by), the one after it before the one before it.
    order = sorted(range(len(sentences)), key=lambda i: (-overlap[i], abs(i - best), i < best))
    kept: list[int] = []
    for i in order:
        candidate = sorted(kept + [i])
        if count_tokens(_join(sentences, candidate)) <= budget_tokens:
            kept = candidate
    if not kept:
        return truncate_to(sentences[best], budget_tokens, count_tokens)
    return _join(sentences, kept)


def _join(sentences: list[str], kept: list[int]) -> str:
    parts = []
    for pos, i in enumerate(kept):
        if pos and i != kept[pos - 1] + 1:
            parts.append("…")
        parts.append(sentences[i])
    return " ".join(parts)


def truncate_to(text: str, budget_tokens: int, count_tokens: CountTokens) -> str:
    """The longest prefix (cut at a space when possible) that fits the budget."""
    if count_tokens(text) <= budget_tokens:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # binary search on characters; token counts are monotone enough
        mid = (lo + hi + 1) // 2
        if count_tokens(text[:mid]) <= budget_tokens:
            lo = mid
        else:
            hi = mid - 1
    cut = text[:lo]
    space = cut.rfind(" ")
    return (cut[:space] if space > lo * 0.8 else cut).rstrip() + " …"
