"""Response bodies: what clients see, never the stored or engine types directly."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from zhiku.api.schemas.stored import JobState, Scope
from zhiku.engine.llm.answer import RefusalReason


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorResponse(BaseModel):
    """The one error shape every route returns."""

    error: ErrorInfo


class HitOut(BaseModel):
    doc_id: str
    chunk_id: str
    text: str
    score: float
    title: str = ""
    section: str = ""
    source: str = ""
    chunk_index: int = 0
    metadata: dict[str, Any] = {}


class SearchResponse(BaseModel):
    collection: str
    hits: list[HitOut]
    timings_ms: dict[str, float] | None = None


class CitationOut(BaseModel):
    n: int
    doc_id: str
    chunk_id: str
    title: str = ""
    snippet: str = ""
    score: float = 0.0
    source: str = ""


class SourceOut(BaseModel):
    """A numbered source packed into the prompt (sent first when streaming)."""

    n: int
    doc_id: str
    chunk_id: str
    title: str = ""
    section: str = ""
    source: str = ""
    score: float = 0.0


class AskResponse(BaseModel):
    """A grounded answer, a quoted passage, or a refusal (`mode`), with checked citations."""

    answer: str
    citations: list[CitationOut]
    # answer: the model's answer, then the cited sentence that supports it;
    # quote: the best source's best sentence, when the model gave no usable answer;
    # refusal: "not found in the documents", with its reason.
    mode: Literal["answer", "quote", "refusal"] = "answer"
    refused: bool
    refusal_reason: RefusalReason | None = None
    sources: list[SourceOut] = []
    language: str = ""
    standalone_question: str = ""
    timings_ms: dict[str, float] = {}


class DocumentSummary(BaseModel):
    doc_id: str
    title: str = ""
    source: str = ""
    chunk_count: int = 0
    content_hash: str = ""
    metadata: dict[str, Any] = {}


class DocumentList(BaseModel):
    collection: str
    offset: int
    limit: int
    documents: list[DocumentSummary]


class ChunkOut(BaseModel):
    chunk_id: str
    chunk_index: int
    text: str
    section: str = ""


class DocumentOut(DocumentSummary):
    text: str
    chunks: list[ChunkOut]


class JobOut(BaseModel):
    id: str
    collection: str
    state: JobState
    files: list[str] = []
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    documents: int = 0
    chunks: int = 0
    errors: list[dict[str, Any]] = []
    message: str = ""


class IngestResult(BaseModel):
    """POST /documents done inline (201), or queued as a job (202, `job` set)."""

    collection: str
    doc_ids: list[str] = []
    chunks: int | None = None
    errors: list[dict[str, Any]] = []
    job: JobOut | None = None


class Deleted(BaseModel):
    deleted: str


class CollectionOut(BaseModel):
    name: str
    documents: int
    chunks: int
    model: str
    dim: int | None = None
    manifest: dict[str, Any] = {}


class CollectionList(BaseModel):
    collections: list[CollectionOut]


class TextOut(BaseModel):
    """summarize / rewrite / generate."""

    text: str


class ExtractOut(BaseModel):
    data: Any = None
    valid: bool
    attempts: int
    errors: list[str] = []


class ClassifyOut(BaseModel):
    labels: list[str]
    label: str
    confidence: float
    scores: dict[str, float] = {}


class Health(BaseModel):
    status: Literal["ok", "not_ready"]
    checks: dict[str, str] = {}


class KeyInfo(BaseModel):
    id: str
    name: str = ""
    scope: Scope
    collections: list[str]


# -- OpenAI-compatible ------------------------------------------------------------


class ZhikuExtension(BaseModel):
    """Our extension to OpenAI responses: the checked citations behind the answer."""

    citations: list[CitationOut] = []
    mode: Literal["answer", "quote", "refusal"] = "answer"
    refused: bool = False
    refusal_reason: RefusalReason | None = None
    timings_ms: dict[str, float] = {}


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] = "stop"


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage = Usage()
    zhiku: ZhikuExtension = Field(
        default_factory=ZhikuExtension,
        description="zhiku extension: citations (doc_id, chunk_id, title, snippet) of the answer",
    )


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "zhiku"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
