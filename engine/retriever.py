"""LangChain retriever over a KnowledgeBase: `kb.as_retriever()` returns one.

Sync retrieval calls `kb.search`; async retrieval is LangChain's default
(the same call in an executor), so there is one body, not two.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from zhiku.engine.types import Hit


def hit_to_document(hit: Hit) -> Document:
    """A search hit as a LangChain Document (ids, title, score and metadata kept)."""
    metadata: dict[str, Any] = {
        **hit.metadata,
        "doc_id": hit.doc_id,
        "chunk_id": hit.chunk_id,
        "chunk_index": hit.chunk_index,
        "title": hit.title,
        "section": hit.section,
        "source": hit.source,
        "score": hit.score,
    }
    return Document(page_content=hit.text, metadata=metadata, id=hit.chunk_id)


class ZhikuRetriever(BaseRetriever):
    """Hybrid (or dense / BM25) search of one zhiku collection."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    kb: Any = Field(description="a zhiku KnowledgeBase (anything with .search)")
    top_k: int | None = None
    mode: str | None = None
    filters: dict[str, Any] | None = None
    fusion: str | None = None
    alpha: float | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        hits = self.kb.search(
            query, top_k=self.top_k, mode=self.mode, filters=self.filters, fusion=self.fusion, alpha=self.alpha
        )
        return [hit_to_document(h) for h in hits]


def as_retriever(kb: Any, **search: Any) -> ZhikuRetriever:
    """What `KnowledgeBase.as_retriever(**search)` returns."""
    return ZhikuRetriever(kb=kb, **search)
