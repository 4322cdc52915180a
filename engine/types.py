"""Plain data types shared by the engine, ingest, API and eval layers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zhiku.engine.query import detect_language


@dataclass(frozen=True, slots=True)
class SparseVector:
    """A sparse vector: parallel term ids (uint32) and weights."""

    indices: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(slots=True)
class Chunk:
    """One piece of a document, ready to embed and store."""

    doc_id: str
    chunk_id: str
    chunk_index: int
    text: str
    content_hash: str  # of the whole document, so a changed document gets new chunk ids
    chunk_count: int
    title: str = ""
    section: str = ""
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The payload stored with the point (user metadata under `meta`)."""
        return {
            "text": self.text,
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "chunk_index": self.chunk_index,
            "chunk_count": self.chunk_count,
            "content_hash": self.content_hash,
            "title": self.title,
            "section": self.section,
            "source": self.source,
            "meta": dict(self.metadata),
            # Cross-lingual search pools chunks by language (engine/search.py).
            "language": detect_language(self.text),
        }


@dataclass(slots=True)
class Point:
    """What a vector store writes: id, dense vector, BM25 sparse vector, payload."""

    id: str  # a UUID string
    dense: np.ndarray
    sparse: SparseVector
    payload: dict[str, Any]


@dataclass(slots=True)
class ScoredPoint:
    """A store query result."""

    id: str
    score: float
    payload: dict[str, Any]


# How a chunk's section path is joined ("Guide > Install"); the last part is its heading.
SECTION_SEP = " > "


@dataclass(slots=True)
class Hit:
    """One search result as users see it."""

    doc_id: str
    chunk_id: str
    text: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    section: str = ""
    source: str = ""
    chunk_index: int = 0

    @classmethod
    def from_payload(cls, payload: dict[str, Any], score: float) -> "Hit":
        """Build a hit from a stored payload."""
        return cls(
            doc_id=payload.get("doc_id", ""),
            chunk_id=payload.get("chunk_id", ""),
            text=payload.get("text", ""),
            score=float(score),
            metadata=dict(payload.get("meta") or {}),
            title=payload.get("title", ""),
            section=payload.get("section", ""),
            source=payload.get("source", ""),
            chunk_index=int(payload.get("chunk_index", 0)),
        )
