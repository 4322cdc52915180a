"""Request bodies. Static bounds here are hard ceilings; the configured (lower)
limits from ServerSettings/RetrievalSettings are checked in api.limits."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zhiku.engine.names import COLLECTION_NAME_PATTERN, COLLECTION_NAME_RULE
from zhiku.engine.settings import HARD_MAX_TOP_K, MAX_LLM_TOP_K

# Hard ceilings so the published schema is honest about what can never pass.
HARD_MAX_CHARS = 1_000_000

CollectionName = Annotated[str, Field(pattern=COLLECTION_NAME_PATTERN, description=COLLECTION_NAME_RULE)]
LLMTopK = Annotated[int, Field(ge=1, le=MAX_LLM_TOP_K)]
Text = Annotated[str, Field(min_length=1, max_length=HARD_MAX_CHARS)]
Filters = Annotated[
    dict[str, Any] | None,
    Field(
        description='Metadata filters: {"lang": "en"} equality, {"tag": ["a","b"]} any-of, '
        '{"year": {"gte": 2000}} range.'
    ),
]
TopK = Annotated[int | None, Field(ge=1, le=HARD_MAX_TOP_K)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchRequest(_Body):
    """POST /search."""

    query: Text
    collection: CollectionName = "default"
    top_k: TopK = None
    mode: Literal["hybrid", "dense", "bm25"] | None = None
    fusion: Literal["convex", "rrf", "dbsf"] | None = None
    alpha: Annotated[float | None, Field(ge=0.0, le=1.0)] = None
    filters: Filters = None
    debug: bool = Field(False, description="include per-stage timings")


class ChatTurn(_Body):
    """One earlier turn of a conversation."""

    role: Literal["user", "assistant"]
    content: Annotated[str, Field(max_length=HARD_MAX_CHARS)]


class AskRequest(_Body):
    """POST /ask."""

    question: Text
    collection: CollectionName = "default"
    history: Annotated[list[ChatTurn], Field(max_length=100)] = []
    filters: Filters = None
    top_k: LLMTopK | None = None
    stream: bool = Field(False, description="answer as a text/event-stream")


class DocumentIn(_Body):
    """One document given as text."""

    id: Annotated[str | None, Field(min_length=1, max_length=512)] = None
    text: Text
    title: Annotated[str, Field(max_length=1000)] = ""
    source: Annotated[str, Field(max_length=2000)] = ""
    metadata: dict[str, Any] = {}


class DocumentsIn(_Body):
    """POST /documents with a JSON body."""

    collection: CollectionName = "default"
    documents: Annotated[list[DocumentIn], Field(min_length=1, max_length=10_000)]


class CollectionCreate(_Body):
    """POST /collections."""

    name: CollectionName


class SummarizeRequest(_Body):
    """POST /summarize: a text, stored documents, or a search's hits (any mix)."""

    text: Annotated[str | None, Field(min_length=1, max_length=HARD_MAX_CHARS)] = None
    doc_ids: Annotated[list[Annotated[str, Field(min_length=1, max_length=512)]], Field(max_length=100)] = []
    query: Annotated[str | None, Field(min_length=1, max_length=HARD_MAX_CHARS)] = None
    collection: CollectionName = "default"
    filters: Filters = None
    top_k: LLMTopK = 10
    length: Literal["short", "medium", "long"] = "short"


class ExtractRequest(_Body):
    """POST /extract: JSON matching a JSON Schema."""

    text: Text
    json_schema: dict[str, Any] = Field(alias="schema", description="a JSON Schema object")
    retries: Annotated[int | None, Field(ge=0, le=5)] = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ClassifyExample(_Body):
    """A few-shot example."""

    text: Annotated[str, Field(min_length=1, max_length=HARD_MAX_CHARS)]
    labels: Annotated[list[str], Field(min_length=1)]


class ClassifyRequest(_Body):
    """POST /classify."""

    text: Text
    labels: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200)]] | dict[str, str],
        Field(description="label names, or name -> description"),
    ]
    examples: Annotated[list[ClassifyExample], Field(max_length=50)] = []
    multi_label: bool = False


class RewriteRequest(_Body):
    """POST /rewrite."""

    text: Text
    style: Literal["polish", "correct", "simplify", "translate"] = "polish"
    target_language: Annotated[str | None, Field(min_length=2, max_length=8)] = None


class GenerateRequest(_Body):
    """POST /generate: free, or grounded in a collection."""

    prompt: Text
    grounded: bool = False
    collection: CollectionName = "default"
    filters: Filters = None
    top_k: LLMTopK = 5


class ChatMessage(BaseModel):
    """An OpenAI chat message (content as a string or text parts)."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """POST /v1/chat/completions (unknown OpenAI fields are accepted and ignored)."""

    model_config = ConfigDict(extra="allow")

    model: Annotated[str, Field(min_length=1, max_length=200, description="zhiku/<collection>")]
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=200)]
    stream: bool = False
    max_tokens: Annotated[int | None, Field(ge=1)] = None
    temperature: Annotated[float | None, Field(ge=0.0, le=2.0)] = None


class ReindexRequest(_Body):
    """POST /admin/reindex: build a new version of a collection, then switch its alias."""

    collection: CollectionName
    embed_backend: str = Field(min_length=1, max_length=64)
    model: str | None = Field(None, max_length=300)
    chunk_size: int | None = Field(None, ge=16, le=8192)
    drop_old: bool = False
