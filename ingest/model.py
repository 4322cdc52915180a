"""Plain data passed between the ingest stages (and across process boundaries)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ElementKind = Literal["title", "text", "list", "table", "code"]


@dataclass(slots=True)
class Element:
    """One structural piece of a parsed document, independent of the parser."""

    kind: ElementKind
    text: str
    level: int = 0  # heading depth for titles (0 = top)
    page: int | None = None
    rows: list[list[str]] | None = None  # tables: header row first
    confidence: float | None = None  # OCR'd text: its lowest line score; None for a text layer


@dataclass(slots=True)
class ParsedDoc:
    """A document a loader found in a file (most files hold one; a BEIR corpus many)."""

    key: str  # "" for the file's own document, else the record id inside the file
    elements: list[Element]
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""  # set by the loader for documents inside a container file


@dataclass(slots=True)
class Piece:
    """A chunk before it has an id: text plus where it sits in the document."""

    text: str
    section: str = ""
    parent_section: str = ""
    section_index: int = 0
    kind: str = "text"
    pages: list[int] = field(default_factory=list)
    ocr_confidence: float | None = None  # lowest score of the OCR'd text it holds
