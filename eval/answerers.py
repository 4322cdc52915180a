"""Answerers the answer eval can run, and the optional LLM faithfulness judge.

`extractive` needs no LLM (a retrieval-only baseline: the best-matching
sentence of the top hits); `ask` (also called `rag`) runs the shipped ask
chain, the one /ask serves, so `zhiku eval answers` and
`bench/answer_quality.py` measure what users get.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from zhiku.engine.errors import ConfigError
from zhiku.engine.llm.citations import strip_markers
from zhiku.eval.answers import Answer, Judge, answer_tokens

_SENTENCE = re.compile(r"(?<=[.!?。！？])\s*")
JUDGE_PROMPT = (
    "Passages:\n{contexts}\n\nQuestion: {question}\nAnswer: {answer}\n\n"
    "Is the answer fully supported by the passages? Reply YES or NO."
)


class ExtractiveAnswerer:
    """Retrieval-only baseline: the sentence of the top hits sharing most words with the question."""

    def __init__(self, kb, top_k: int = 3, mode: str | None = None) -> None:
        self.kb, self.top_k, self.mode = kb, top_k, mode

    def answer(self, question: str) -> Answer:
        hits = self.kb.search(question, top_k=self.top_k, mode=self.mode)
        if not hits:
            return Answer("", refused=True)
        wanted = set(answer_tokens(question))
        best, best_hit, best_overlap = "", hits[0], -1
        for hit in hits:
            for sentence in _SENTENCE.split(hit.text):
                overlap = len(wanted.intersection(answer_tokens(sentence)))
                if sentence.strip() and overlap > best_overlap:
                    best, best_hit, best_overlap = sentence.strip(), hit, overlap
        return Answer(best, citations=[best_hit.doc_id], contexts=[best_hit.text])


class AskAnswerer:
    """The shipped ask chain (`LLMService.ask_stream`, what /ask runs), timed to its first token."""

    def __init__(self, service, top_k: int | None = None) -> None:  # type: ignore[no-untyped-def]
        self.service, self.top_k = service, top_k
        self.last = None  # the engine Answer behind the last result, for benchmarks that need more

    def answer(self, question: str) -> Answer:
        start = time.perf_counter()
        first = None
        result = None
        for event in self.service.ask_stream(question, top_k=self.top_k):
            if event.type == "token" and first is None:
                first = time.perf_counter() - start
            elif event.type == "done":
                result = event.data
        assert result is not None, "ask stream ended without a done event"
        self.last = result
        by_n = {s.n: s for s in result.sources}
        cited = [by_n[c.n] for c in result.citations if c.n in by_n]
        return Answer(
            "" if result.refused else strip_markers(result.text),
            citations=[s.hit.doc_id for s in cited],
            contexts=[s.text for s in cited],
            refused=result.refused,
            mode=result.mode,
            ttft_s=first,
            total_s=time.perf_counter() - start,
        )


def llm_judge(generator) -> Judge:
    """A faithfulness judge that asks the configured LLM for YES/NO."""

    def judge(question: str, answer: str, contexts: Sequence[str]) -> bool:
        reply = generator.complete(
            [{"role": "user", "content": JUDGE_PROMPT.format(
                contexts="\n".join(contexts), question=question, answer=answer)}],
            max_tokens=4,
            temperature=0.0,
        )
        return reply.strip().upper().startswith("YES")

    return judge


ANSWERERS: dict[str, Callable[..., object]] = {
    "extractive": lambda kb, top_k, mode: ExtractiveAnswerer(kb, top_k, mode),
    # The search mode is the chain's own (hybrid); top_k is the number of packed sources.
    "ask": lambda kb, top_k, mode: AskAnswerer(kb.llm, top_k),
    "rag": lambda kb, top_k, mode: AskAnswerer(kb.llm, top_k),
}


def build_answerer(name: str, kb, top_k: int = 3, mode: str | None = None):
    """An answerer from the registry by name."""
    try:
        factory = ANSWERERS[name]
    except KeyError:
        raise ConfigError(f"unknown answerer {name!r}; known: {sorted(ANSWERERS)}") from None
    return factory(kb, top_k, mode)
