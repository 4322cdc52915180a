"""Span answers: the source sentence that answers the question, quoted and cited.

Grounded by construction: the answer is a verbatim sentence of a cited
source, so a small model can neither invent a fact nor cite the wrong source.
Steps:
1. *Candidates*: every sentence of the top `SPAN_SOURCES` sources (whole
   chunks), at most `MAX_CANDIDATES`.
2. *Ranking*: a logistic ranker (`rules.SPAN_RANK_WEIGHTS`, per language)
   scores each sentence from what it shares with the question: the rare
   question terms it holds (IDF over the retrieved sentences,
   `context.term_weights`), its share of the question's words, the source's
   rank, its place in the source, its length, and its embedding similarity
   to the question against the best sentence's (`SentenceSimilarity`, the
   collection's embedder: one batch of short texts).
3. *The model's view*: one prompt (prompts/ask_span.LANG.md) shows the best
   `SPAN_CANDIDATES` sentences numbered in rank order; the generator scores
   each number as the start of its reply (`Generator.score_choices`: one
   prompt evaluation, no decoding).
4. The answer is the ranker's best sentence with its source's citation, when
   the span scorer (`rules.span_confidence`: the ranker's probability and
   margin, the gate's confidence, and whether the model, the term weights
   and the embedding agree on that sentence) reaches
   `ask.min_span_confidence`.
5. Else, with `ask.quote_mode`, the best sentence and the next best of its
   source (`passage`, in their order: `“a … b” [1]`) are quoted (`mode:
   "quote"`) when the quote scorer (`rules.span_quote_confidence`: the same
   signals, with the partner's and whether the model picked either) reaches
   `ask.min_span_quote_confidence`; else the chain refuses (`model`). One
   source, so one citation: a second source's sentence (the runner-up
   overall) answered more often, but cited a source that does not answer as
   often as not (citation precision 0.84 on the English benchmark).

Why the ranker's pick and not the model's: on squad-dev calibration
questions the default 0.5B model's own pick held the answer 0.59 of the
time, the ranker's best sentence 0.78 (term weights alone about 0.71-0.77).
When the two disagreed, the ranker was right 0.58 of the time and the model
0.19. The model's agreement is what it adds: it feeds the confidence, not
the choice.

A generator that cannot score choices (a hosted API) gets None, and the
chain falls back to a generated answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from zhiku.engine.llm.base import Generator
from zhiku.engine.llm.chat_model import to_messages
from zhiku.engine.llm.citations import content_tokens, coverage, split_sentences
from zhiku.engine.llm.context import Source, _terms, term_weights
from zhiku.engine.llm.rules import span_rank
from zhiku.engine.llm.templates import Lang, load_prompt
from zhiku.engine.types import SECTION_SEP

# Sources whose sentences are candidates, and how many the model sees. The
# best source holds the answer most often (on squad-dev the model's right
# citations were to [1] 69 times in 73); five sentences keep the prompt within
# the time-to-first-token budget of the default model.
SPAN_SOURCES = 3
SPAN_CANDIDATES = 5
# Sentences ranked at most (the rest of long sources are not read).
MAX_CANDIDATES = 24
# A sentence longer than this many characters is not a candidate.
MAX_SPAN_CHARS = 600

# Cosine similarity of the question to each text (the collection's embedder).
SentenceSimilarity = Callable[[str, Sequence[str]], Sequence[float]]


@dataclass(frozen=True, slots=True)
class Span:
    """A candidate answer: a sentence of a source, with the ranker's inputs and probability."""

    source: Source
    text: str
    score: float
    features: Mapping[str, float] = field(default_factory=dict)
    # The sentence's place in its source (0: the first), to quote two of one source in order.
    position: int = 0


def candidates(
    question: str,
    sources: Sequence[Source],
    lang: Lang,
    similarity: SentenceSimilarity | None = None,
) -> list[Span]:
    """The sentences of the top sources, best first by the span ranker."""
    top = list(sources[:SPAN_SOURCES])
    weights = term_weights(question, [src.hit.text for src in top])
    needles = content_tokens(question)
    raw: list[tuple[Source, str, dict[str, float]]] = []
    positions: list[int] = []
    seen: set[str] = set()
    for rank, src in enumerate(top):
        sentences = [_without_heading(x, src.hit.section) for x in split_sentences(src.hit.text)]
        for pos, sentence in enumerate(sentences):
            if not sentence or sentence in seen or len(sentence) > MAX_SPAN_CHARS:
                continue
            seen.add(sentence)
            raw.append((src, sentence, {
                "tw": sum(weights.get(t, 0.0) for t in _terms(sentence)),
                "cov": coverage(needles, sentence) if needles else 0.0,
                "src0": float(rank == 0),
                "src1": float(rank == 1),
                "pos0": float(pos == 0),
                "loglen": math.log1p(len(sentence)) / 6,
            }))
            positions.append(pos)
            if len(raw) >= MAX_CANDIDATES:
                break
        if len(raw) >= MAX_CANDIDATES:
            break
    if not raw:
        return []
    _relative(raw, "tw", "tw_norm", "tw_top", ratio=True)
    sims = list(similarity(question, [text for _, text, _ in raw])) if similarity is not None else None
    for i, (_, _, f) in enumerate(raw):
        f["dense"] = float(sims[i]) if sims is not None else 0.0
    _relative(raw, "dense", "dense_gap", "dense_top", ratio=False)
    spans = [Span(src, text, span_rank({"bias": 1.0, **f}, lang), f, pos)
             for (src, text, f), pos in zip(raw, positions)]
    # Ties go to the better-ranked source and the earlier sentence (stable sort).
    return sorted(spans, key=lambda s: -s.score)


def _without_heading(sentence: str, section: str) -> str:
    """The sentence without its section's heading line (a chunk starts with it; it ends no sentence)."""
    heading = section.rsplit(SECTION_SEP, 1)[-1].strip() if section else ""
    if heading and sentence.startswith(heading + "\n"):
        return sentence[len(heading) + 1 :].strip()
    return sentence


def _relative(raw: list[tuple[Source, str, dict[str, float]]], key: str, scaled: str, top: str, ratio: bool) -> None:
    """Each candidate's `key` against the best candidate's: a ratio or a gap, and whether it is the best."""
    best = max(f[key] for _, _, f in raw)
    for _, _, f in raw:
        f[scaled] = (f[key] / best if best else 0.0) if ratio else f[key] - best
        f[top] = float(f[key] == best)


@dataclass(frozen=True, slots=True)
class Choice:
    """The model's pick among the candidates: its rank among them and its probability."""

    rank: int
    probability: float


def choose(generator: Generator, question: str, spans: Sequence[Span], lang: Lang) -> Choice | None:
    """The candidate the model finds likeliest to answer (among the first `SPAN_CANDIDATES`), or None
    when it cannot score choices."""
    shown = list(spans[:SPAN_CANDIDATES])
    if not shown:
        return None
    listed = "\n".join(f"{i}. {span.text}" for i, span in enumerate(shown, 1))
    prompt = load_prompt("ask_span", lang).format_messages(sentences=listed, question=question)
    scores = generator.score_choices(to_messages(prompt), [str(i) for i in range(1, len(shown) + 1)])
    if not scores:
        return None
    best = max(range(len(shown)), key=lambda i: (scores[i], -i))
    top = max(scores)
    total = sum(math.exp(x - top) for x in scores)
    return Choice(best, math.exp(scores[best] - top) / total)


def passage(spans: Sequence[Span]) -> list[Span]:
    """The quote given when the best sentence alone is not sure enough: it and the next best of its source.

    Both in their order in the source, so the quote reads as one passage
    under one citation; just the best sentence when its source has no other.
    """
    partner = partner_index(spans)
    pair = [spans[0], spans[partner]] if partner is not None else list(spans[:1])
    return sorted(pair, key=lambda sp: sp.position)


def partner_index(spans: Sequence[Span]) -> int | None:
    """Where the best candidate's source's next best sentence is in `spans` (None: it has no other)."""
    return next((i for i, sp in enumerate(spans[1:], 1) if sp.source.n == spans[0].source.n), None) if spans else None


def quote_text(pair: Sequence[Span]) -> str:
    """The sentences of one source quoted with its marker: “a b” [1] when adjacent, “a … b” [1] when not."""
    joined = pair[0].text
    for before, after in zip(pair, pair[1:]):
        joined += (" " if after.position == before.position + 1 else " … ") + after.text
    return f"“{joined}” [{pair[0].source.n}]"
