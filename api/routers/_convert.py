"""Engine objects to response schemas (one place, so routes stay short)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from zhiku.api.schemas.responses import AskResponse, CitationOut, HitOut, SourceOut
from zhiku.engine.types import Hit


def hit_out(hit: Hit) -> HitOut:
    return HitOut(
        doc_id=hit.doc_id,
        chunk_id=hit.chunk_id,
        text=hit.text,
        score=hit.score,
        title=hit.title,
        section=hit.section,
        source=hit.source,
        chunk_index=hit.chunk_index,
        metadata=hit.metadata,
    )


def sources_out(sources: Any) -> list[SourceOut]:
    """Packed sources (engine.llm.context.Source) as sent to clients."""
    return [SourceOut(**s.ref()) for s in sources]


def citations_out(citations: Any) -> list[CitationOut]:
    return [CitationOut(**asdict(c)) for c in citations]


def answer_out(answer: Any) -> AskResponse:
    """An engine Answer as the /ask response."""
    return AskResponse(
        answer=answer.text,
        citations=citations_out(answer.citations),
        mode=answer.mode,
        refused=answer.refused,
        refusal_reason=answer.refusal_reason,
        sources=sources_out(answer.sources),
        language=answer.language,
        standalone_question=answer.standalone_question,
        timings_ms=answer.timings,
    )
