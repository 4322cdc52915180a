"""Pure functions that turn search hits into numbered sources within a token budget."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from zhiku.engine.llm.citations import split_sentences
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

    def ref(self) -> dict[str, object]:
        """The source as clients see it: its number and the identity of its hit."""
        hit = self.hit
        return {
            "n": self.n,
            "doc_id": hit.doc_id,
            "chunk_id": hit.chunk_id,
            "title": hit.title,
            "section": hit.section,
            "source": hit.source,
            "score": hit.score,
        }


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
    first_source_tokens: int | None = None,
) -> list[Source]:
    """Number hits [1]..[n] in rank order until the token budget is spent.

    With `parent_of`, a hit is replaced by its parent section when that fits;
    later hits from an already packed parent are skipped. A text longer than
    its share (`first_source_tokens` for the first source, `source_tokens` for
    the others and for the first when `first_source_tokens` is None; None
    there: whatever is left) is compressed to the passages nearest
    `question` (see `compress`); without a question only the first source is
    cut (to a prefix), so the model always sees the best hit.
    """
    sources: list[Source] = []
    seen: set[tuple[str, str]] = set()
    left = budget_tokens
    weights = term_weights(question, [h.text for h in hits]) if question else None
    for hit in hits:
        if max_sources is not None and len(sources) >= max_sources:
            break
        key = (hit.doc_id, hit.section) if parent_of else (hit.doc_id, hit.chunk_id)
        if key in seen:
            continue
        share = first_source_tokens if not sources and first_source_tokens else source_tokens
        room = min(left, share + 8) if share else left
        text = _fit(hit, room - 8, count_tokens, parent_of, question, weights, first=not sources)
        if text is None:
            continue
        sources.append(Source(len(sources) + 1, hit, text))
        seen.add(key)
        left -= count_tokens(text) + 8  # header and separators
        if left <= 24:
            break
    return sources


def _fit(
    hit: Hit,
    room: int,
    count_tokens: CountTokens,
    parent_of: ParentOf | None,
    question: str | None,
    weights: dict[str, float] | None,
    first: bool,
) -> str | None:
    """The text to pack for a hit within `room` tokens, or None when nothing useful fits."""
    if room < 8:  # not even a short sentence fits
        return None
    parent = parent_of(hit) if parent_of else None
    for text in (parent, hit.text):
        if text and count_tokens(text) <= room:
            return text
    if question:
        return compress(hit.text, question, room, count_tokens, weights)
    return truncate_to(hit.text, room, count_tokens) if first else None


_CLAUSE_END = re.compile(r"(?<=[,;:])\s+|(?<=[，；：、])")  # "1,234" stays whole


@lru_cache(maxsize=4096)
def _terms(text: str) -> frozenset[str]:
    """The text's BM25 terms; cached, as `term_weights` and `compress` see the same sentences."""
    from zhiku.engine.tokenize import tokenize

    return frozenset(tokenize(text))


def term_weights(question: str, texts: list[str]) -> dict[str, float]:
    """IDF of each question term (BM25 terms: stemmed words, jieba words) over the texts' sentences.

    Terms that occur in every sentence (the article's subject) weigh little;
    rare ones, which point at the sentence that answers, weigh most.
    """
    wanted = _terms(question)
    units = [_terms(s) & wanted for text in texts for s in split_sentences(text)]
    n = len(units)
    return {
        term: math.log(1 + (n - df + 0.5) / (df + 0.5))
        for term in wanted
        for df in [sum(term in unit for unit in units)]
    }


def weighted_coverage(text: str, weights: dict[str, float]) -> float:
    """Share of the question terms' weight (`term_weights`) that the text holds: rare terms count most."""
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in _terms(text)) / total if total else 0.0


def compress(
    text: str,
    question: str,
    budget_tokens: int,
    count_tokens: CountTokens,
    weights: dict[str, float] | None = None,
) -> str:
    """The passages that best match the question, in text order, within budget.

    Passages are sentences; a sentence longer than the budget is split into
    clauses, so the matching part of a long sentence survives rather than its
    prefix. A passage scores the summed `weights` (IDF, see `term_weights`;
    computed over this text alone when not given) of the question terms it
    holds. The best passage is kept first (cut to a prefix if it alone is
    still over budget), then the others by score, nearest the best one among
    equals (answers sit close by). Gaps between kept passages are marked " … ".
    """
    passages = [p for s in split_sentences(text) for p in _split_long(s, budget_tokens, count_tokens)]
    if not passages:
        return ""
    weights = weights if weights is not None else term_weights(question, [text])
    scores = [sum(weights.get(t, 0.0) for t in _terms(p)) for p in passages]
    best = max(range(len(passages)), key=lambda i: (scores[i], -i))
    passages[best] = truncate_to(passages[best], budget_tokens, count_tokens)
    order = sorted(range(len(passages)), key=lambda i: (-scores[i], abs(i - best), i < best))
    kept: list[int] = []
    for i in order:
        candidate = sorted(kept + [i])
        if count_tokens(_join(passages, candidate)) <= budget_tokens:
            kept = candidate
    return _join(passages, kept) if kept else passages[best]


def best_sentence(text: str, question: str, weights: dict[str, float] | None = None) -> str:
    """The text's sentence that holds the most question-term weight (IDF, see `term_weights`); first wins ties."""
    sentences = split_sentences(text)
    if not sentences:
        return text.strip()
    weights = weights if weights is not None else term_weights(question, [text])
    scores = [sum(weights.get(t, 0.0) for t in _terms(s)) for s in sentences]
    return sentences[max(range(len(sentences)), key=lambda i: (scores[i], -i))]


def _split_long(sentence: str, budget_tokens: int, count_tokens: CountTokens) -> list[str]:
    """The sentence, or its clauses when it alone is over budget."""
    if count_tokens(sentence) <= budget_tokens:
        return [sentence]
    return [c.strip() for c in _CLAUSE_END.split(sentence) if c.strip()] or [sentence]


def _join(passages: list[str], kept: list[int]) -> str:
    parts = []
    for pos, i in enumerate(kept):
        if pos and i != kept[pos - 1] + 1:
            parts.append("…")
        parts.append(passages[i])
    return " ".join(parts)


def truncate_to(text: str, budget_tokens: int, count_tokens: CountTokens) -> str:
    """The longest prefix (cut at a space when possible) that fits the budget with its " …"."""
    if count_tokens(text) <= budget_tokens:
        return text
    room = budget_tokens - count_tokens(" …")
    lo, hi = 0, len(text)
    while lo < hi:  # binary search on characters; token counts are monotone enough
        mid = (lo + hi + 1) // 2
        if count_tokens(text[:mid]) <= room:
            lo = mid
        else:
            hi = mid - 1
    cut = text[:lo]
    space = cut.rfind(" ")
    return (cut[:space] if space > lo * 0.8 else cut).rstrip() + " …"
