"""What ask returns: the answer, its checked citations, and the streamed events."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from zhiku.engine.llm.context import Source


@dataclass(slots=True)
class Citation:
    """A source the answer cites, as the user sees it."""

    n: int
    doc_id: str
    chunk_id: str
    title: str
    snippet: str
    score: float
    source: str = ""


@dataclass(slots=True)
class Answer:
    """A grounded answer; `refused` means "not found in the documents"."""

    text: str
    citations: list[Citation]
    refused: bool
    question: str
    standalone_question: str
    language: str
    timings: dict[str, float] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)
    grounded: bool = False
    refusal_reason: str | None = None  # no_results | weak_retrieval | off_topic | model | unsupported | ungrounded

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (sources reduced to their hit identities)."""
        out = {k: v for k, v in asdict(self).items() if k != "sources"}
        out["sources"] = [
            {"n": s.n, "doc_id": s.hit.doc_id, "chunk_id": s.hit.chunk_id, "title": s.hit.title}
            for s in self.sources
        ]
        return out


EventType = Literal["sources", "token", "done"]


@dataclass(slots=True)
class AskEvent:
    """One streamed step: the packed sources, a token, or the final answer."""

    type: EventType
    data: Any

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for SSE / NDJSON."""
        if self.type == "done":
            return {"type": "done", "data": self.data.to_dict()}
        if self.type == "sources":
            return {
                "type": "sources",
                "data": [
                    {"n": s.n, "doc_id": s.hit.doc_id, "chunk_id": s.hit.chunk_id, "title": s.hit.title}
                    for s in self.data
                ],
            }
        return {"type": self.type, "data": self.data}
