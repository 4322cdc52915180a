"""Span answers: the model picks, among the sources' sentences, the one that answers.

Grounded by construction: the answer is a verbatim sentence of a cited
source, so a small model can neither invent a fact nor cite the wrong source.
Steps:
1. *Candidates*: the sentences of the top `SPAN_SOURCES` sources (whole
   chunks), ranked by the question-term weight they hold (IDF over the
   retrieved sentences, `context.term_weights`); the best `SPAN_CANDIDATES`
   are numbered 1..k, best first, so a model that cannot tell them apart
   falls back on the ranking.
2. *Choice*: one prompt (prompts/ask_span.LANG.md) shows the numbered
   sentences and the question; the generator scores each number as the
   start of its reply (`Generator.score_choices`: one prompt evaluation, no
   decoding), and the likeliest wins.
3. The answer is that sentence with its source's citation, when the span
   scorer (`rules.span_confidence`: the model's probability for its pick,
   whether it is also the best-ranked candidate, the sentence's question
   coverage, the dense margin) reaches `ask.min_span_confidence`; else the
   chain refuses (`model`).

A generator that cannot score choices (a hosted API) gets None, and the chain
falls back to a generated answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from zhiku.engine.llm.base import Generator
from zhiku.engine.llm.chat_model import to_messages
from zhiku.engine.llm.citations import split_sentences
from zhiku.engine.llm.context import Source, _terms, term_weights
from zhiku.engine.llm.templates import Lang, load_prompt

# Sources whose sentences are candidates, and how many candidates the model
# sees. The best source holds the answer most often (on squad-dev the
# model's right citations were to [1] 69 times in 73); five sentences keep
# the prompt within the time-to-first-token budget of the default model.
SPAN_SOURCES = 3
SPAN_CANDIDATES = 5
# A candidate longer than this many characters is cut into clauses.
MAX_SPAN_CHARS = 300


@dataclass(frozen=True, slots=True)
class Span:
    """A candidate answer: a sentence of a source."""

    source: Source
    text: str
    score: float


def candidates(question: str, sources: Sequence[Source], k: int = SPAN_CANDIDATES) -> list[Span]:
    """The `k` sentences of the top sources that hold the most question-term weight, best first."""
    top = list(sources[:SPAN_SOURCES])
    weights = term_weights(question, [src.hit.text for src in top])
    spans: list[Span] = []
    seen: set[str] = set()
    for rank, src in enumerate(top):
        for sentence in split_sentences(src.hit.text):
            sentence = sentence.strip()
            if not sentence or sentence in seen or len(sentence) > MAX_SPAN_CHARS * 2:
                continue
            seen.add(sentence)
            score = sum(weights.get(t, 0.0) for t in _terms(sentence))
            # Among equals, the better-ranked source wins.
            spans.append(Span(src, sentence, score - 1e-3 * rank))
    spans.sort(key=lambda s: -s.score)
    return [s for s in spans[:k] if s.score > 0] or spans[:1]


@dataclass(frozen=True, slots=True)
class Choice:
    """The model's pick among the candidates: the span, its rank among them and its probability."""

    span: Span
    rank: int
    probability: float


def choose(generator: Generator, question: str, spans: Sequence[Span], lang: Lang) -> Choice | None:
    """The span the model finds likeliest to answer, or None when it cannot score choices."""
    if not spans:
        return None
    listed = "\n".join(f"{i}. {span.text}" for i, span in enumerate(spans, 1))
    prompt = load_prompt("ask_span", lang).format_messages(sentences=listed, question=question)
    scores = generator.score_choices(to_messages(prompt), [str(i) for i in range(1, len(spans) + 1)])
    if not scores:
        return None
    best = max(range(len(spans)), key=lambda i: (scores[i], -i))
    top = max(scores)
    total = sum(math.exp(x - top) for x in scores)
    return Choice(spans[best], best, math.exp(scores[best] - top) / total)
