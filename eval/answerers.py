"""Answerers the answer eval can run, and the optional LLM faithfulness judge.

`extractive` needs no LLM (a retrieval-only baseline: the best-matching
sentence of the top hits); `rag` asks the configured generator to answer from
numbered retrieved passages and cite them as [n].
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from zhiku.engine.errors import ConfigError
from zhiku.eval.answers import Answer, Judge, answer_tokens

_SENTENCE = re.compile(r"(?<=[.!?。！？])\s*")
_CITE = re.compile(r"\[(\d+)\]")

RAG_SYSTEM = (
    "Answer the question using only the numbered passages. Reply with the shortest "
    "answer span, then cite the passages you used like [1]. If the passages do not "
    "contain the answer, reply exactly: I don't know."
)
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


class RagAnswerer:
    """Retrieve, let the generator answer from numbered passages, keep the passages it cites."""

    def __init__(self, kb, generator, top_k: int = 3, mode: str | None = None) -> None:
        self.kb, self.generator, self.top_k, self.mode = kb, generator, top_k, mode

    def answer(self, question: str) -> Answer:
        hits = self.kb.search(question, top_k=self.top_k, mode=self.mode)
        passages = "\n".join(f"[{i + 1}] {hit.text}" for i, hit in enumerate(hits))
        reply = self.generator.complete(
            [
                {"role": "system", "content": RAG_SYSTEM},
                {"role": "user", "content": f"Passages:\n{passages}\n\nQuestion: {question}"},
            ],
            max_tokens=64,
            temperature=0.0,
        )
        cited = [hits[n - 1] for n in dict.fromkeys(int(m) for m in _CITE.findall(reply)) if 0 < n <= len(hits)]
        text = _CITE.sub("", reply).strip()
        return Answer(text, [h.doc_id for h in cited], [h.text for h in cited])


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


def _generator(kb):
    from zhiku.engine.llm import build_generator

    return build_generator(kb.settings.llm)


ANSWERERS: dict[str, Callable[..., object]] = {
    "extractive": lambda kb, top_k, mode: ExtractiveAnswerer(kb, top_k, mode),
    "rag": lambda kb, top_k, mode: RagAnswerer(kb, _generator(kb), top_k, mode),
}


def build_answerer(name: str, kb, top_k: int = 3, mode: str | None = None):
    """An answerer from the registry by name."""
    try:
        factory = ANSWERERS[name]
    except KeyError:
        raise ConfigError(f"unknown answerer {name!r}; known: {sorted(ANSWERERS)}") from None
    return factory(kb, top_k, mode)
