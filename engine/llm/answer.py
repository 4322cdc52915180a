"""What ask returns: the answer, its checked citations, and the streamed events.

Sources and citations have one JSON form each (`Source.ref`, `Citation`'s
fields); the Python API, the CLI's `--json` and the HTTP API all use it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Literal

from zhiku.engine.llm.context import Source


class RefusalReason(str, Enum):
    """Why ask answered "not found in the documents" (see engine/llm/rules.py)."""

    NO_RESULTS = "no_results"  # retrieval found nothing
    WEAK_RETRIEVAL = "weak_retrieval"  # the best source covers too little of the question
    OFF_TOPIC = "off_topic"  # the closest chunk by embedding is below the embedder's floor
    MODEL = "model"  # the model declined, echoed a header or restated the question
    UNSUPPORTED = "unsupported"  # the answer rests only on sources that miss the question
    UNGROUNDED = "ungrounded"  # no source supports the answer (only with refuse_ungrounded)


AnswerMode = Literal["answer", "quote", "refusal"]
"""`answer`: the model's answer with its supporting sentence; `quote`: the best
passage, quoted, when retrieval is strong but the model gave no usable answer;
`refusal`: not found (see `refusal_reason`)."""


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


@dataclass(slots=True, kw_only=True)
class Answer:
    """A grounded answer, a quoted passage, or a refusal (`mode`)."""

    text: str
    question: str
    standalone_question: str
    language: str
    mode: AnswerMode = "answer"
    citations: list[Citation] = field(default_factory=list)
    refusal_reason: RefusalReason | None = None
    timings: dict[str, float] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)
    grounded: bool = False

    @property
    def refused(self) -> bool:
        """Whether the answer is "not found in the documents"."""
        return self.mode == "refusal"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (sources reduced to their references)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("sources", "refusal_reason")}
        out["refused"] = self.refused
        out["refusal_reason"] = self.refusal_reason.value if self.refusal_reason else None
        out["sources"] = [s.ref() for s in self.sources]
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
            return {"type": "sources", "data": [s.ref() for s in self.data]}
        return {"type": self.type, "data": self.data}
