"""Query rewriting for retrieval (off by default): multi-query and HyDE.

Each strategy wraps a retriever and returns a retriever, so ask, generate and
the eval harness use them the same way.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Protocol

from langchain_core.output_parsers import StrOutputParser

from zhiku.engine.llm.chat_model import GeneratorChatModel
from zhiku.engine.llm.templates import detect_language, load_prompt
from zhiku.engine.types import Hit


class Retriever(Protocol):
    """Anything with KnowledgeBase.search's shape."""

    def __call__(
        self, query: str, top_k: int = ..., filters: Mapping[str, Any] | None = ...
    ) -> list[Hit]: ...


def rrf_hits(lists: list[list[Hit]], top_k: int, k: int = 60) -> list[Hit]:
    """Reciprocal-rank fusion of several hit lists, keyed by chunk id."""
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for hits in lists:
        for rank, hit in enumerate(hits, start=1):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (k + rank)
            first.setdefault(hit.chunk_id, hit)
    order = sorted(scores, key=lambda c: -scores[c])[:top_k]
    return [first[c] for c in order]


def _lines(text: str, n: int) -> list[str]:
    out = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)、])\s*", "", line).strip().strip('"')
        if line and line not in out:
            out.append(line)
    return out[:n]


def multi_query(model: GeneratorChatModel, retriever: Retriever, n: int = 3) -> Retriever:
    """Retrieve for the question and n model-written variants; fuse with RRF."""

    def search(query: str, top_k: int = 10, filters: Mapping[str, Any] | None = None) -> list[Hit]:
        chain = load_prompt("multi_query", detect_language(query)) | model.bind(max_tokens=96) | StrOutputParser()
        variants = _lines(chain.invoke({"question": query, "n": n}), n)
        lists = [retriever(q, top_k=top_k, filters=filters) for q in [query, *variants]]
        return rrf_hits(lists, top_k)

    return search


def hyde(model: GeneratorChatModel, retriever: Retriever) -> Retriever:
    """Retrieve with the question plus a model-written hypothetical answer passage."""

    def search(query: str, top_k: int = 10, filters: Mapping[str, Any] | None = None) -> list[Hit]:
        chain = load_prompt("hyde", detect_language(query)) | model.bind(max_tokens=128) | StrOutputParser()
        passage = chain.invoke({"question": query}).strip()
        return retriever(f"{query}\n{passage}", top_k=top_k, filters=filters)

    return search


QUERY_REWRITERS: dict[str, Callable[[GeneratorChatModel, Retriever, int], Retriever]] = {
    "none": lambda model, retriever, n: retriever,
    "multi-query": multi_query,
    "hyde": lambda model, retriever, n: hyde(model, retriever),
}
