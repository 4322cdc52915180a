"""KnowledgeBase: one collection, the library API other apps (and our CLI, server and eval) use.

Concerns live in their own modules and KnowledgeBase puts them together:
document identity in `engine/identity.py`, writes (and the writer lock) in
`engine/writes.py`, search orchestration in `engine/search.py`, the LLM
abilities in `engine/llm/facade.py`. File ingest is `zhiku.ingest`, which
engine never imports: `zhiku.KnowledgeBase` adds `add_files` on top.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from zhiku.engine.aio import run_in_thread
from zhiku.engine.crosslingual import LLMTranslator
from zhiku.engine.engine import Engine
from zhiku.engine.errors import NotFound
from zhiku.engine.filters import Match, parse_filters
from zhiku.engine.llm.facade import LLMFacade
from zhiku.engine.llm.rerank import build_reranker
from zhiku.engine.search import MODES, Searcher, SearchRequest
from zhiku.engine.settings import Settings, load_settings
from zhiku.engine.tokenize import tokenizer
from zhiku.engine.types import Hit
from zhiku.engine.writes import DocumentWrites, open_manifest

__all__ = ["MODES", "Document", "KnowledgeBase"]


@dataclass(slots=True)
class Document:
    """A stored document: its identity, metadata and chunks in order."""

    doc_id: str
    title: str
    source: str
    content_hash: str
    metadata: dict[str, Any]
    chunks: list[Hit] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(c.text for c in self.chunks)


class KnowledgeBase(DocumentWrites, LLMFacade):
    """One collection: add, search, delete; usable as a context manager.

    `KnowledgeBase(path, collection)` opens (creating if needed) a collection
    in the data dir `path`; keyword overrides change settings, e.g.
    `embed__backend="fake"` or `store={"backend": "server", "url": ":memory:"}`.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        collection: str = "default",
        settings: Settings | None = None,
        **overrides: Any,
    ) -> None:
        if settings is None:
            settings = load_settings(data_dir=path, **overrides)
        elif path is not None:
            settings = settings.model_copy(update={"data_dir": Path(path)})
        engine = Engine(settings)
        self._owns_engine = True
        self._setup(engine, collection)

    @classmethod
    def _attach(cls, engine: Engine, collection: str) -> "KnowledgeBase":
        kb = cls.__new__(cls)
        kb._owns_engine = False
        kb._setup(engine, collection)
        return kb

    def _setup(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.store = engine.store
        # `name` is what users call it; `collection` the physical collection it
        # resolves to (a re-index moves an alias), pinned for this object's life.
        self.name = name
        collection = self.collection = self.store.resolve(name)
        built = self.store.read_manifest(collection) if self.store.has_collection(collection) else None
        self.embedder = engine.embedder_for(name, collection, built and built.get("embedder"))
        r = self.settings.retrieval
        reranker = build_reranker(r.rerank, r.rerank_model, self.settings.llm.threads)
        self._closed = False
        self.manifest = open_manifest(self.store, collection, self.settings, self.embedder)
        translator = LLMTranslator(lambda: engine.generator) if r.translate_queries else None
        self.searcher = Searcher(
            self.store, self.embedder, collection, engine.leg_pool, tokenizer(self.manifest.tokenizer), reranker,
            translator,
        )
        # Open the collection now: an embedded store locks it here, so a second
        # process fails at open with StoreLocked, not on its first query.
        self.store.count(collection)

    # -- reading -------------------------------------------------------------------

    def search(
        self,
        query: str,
        top_k: int | None = None,
        mode: str | None = None,
        filters: Mapping[str, Any] | None = None,
        fusion: str | None = None,
        alpha: float | None = None,
    ) -> list[Hit]:
        """Hybrid (dense + BM25, fused), dense-only or BM25-only search."""
        return self.search_debug(query, top_k, mode, filters, fusion, alpha)[0]

    def search_debug(
        self,
        query: str,
        top_k: int | None = None,
        mode: str | None = None,
        filters: Mapping[str, Any] | None = None,
        fusion: str | None = None,
        alpha: float | None = None,
    ) -> tuple[list[Hit], dict[str, float]]:
        """Search and also return per-stage timings in milliseconds."""
        request = SearchRequest.resolve(self.settings.retrieval, query, top_k, mode, filters, fusion, alpha)
        return self.searcher.run(request)

    asearch = run_in_thread(search)
    asearch_debug = run_in_thread(search_debug)

    def as_retriever(self, **search: Any) -> Any:
        """A LangChain BaseRetriever over this collection (search options fixed)."""
        from zhiku.engine.retriever import as_retriever

        return as_retriever(self, **search)

    def count(self, filters: Mapping[str, Any] | None = None) -> int:
        """Number of chunks (optionally matching filters)."""
        return self.store.count(self.collection, parse_filters(filters))

    def count_documents(self) -> int:
        """Number of documents (their first chunks)."""
        return self.store.count(self.collection, (Match("chunk_index", 0),))

    def list_documents(
        self, offset: int = 0, limit: int = 100, filters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Documents in id order: id, title, source, chunk count, hash and metadata."""
        conditions = (Match("chunk_index", 0), *parse_filters(filters))
        docs = sorted(
            (_doc_summary(p) for _, p in self.store.scroll(self.collection, conditions)),
            key=lambda d: d["doc_id"],
        )
        return docs[offset : offset + limit]

    def get_document(self, doc_id: str) -> Document:
        """One document with its chunks in order; NotFound if absent."""
        points = [p for _, p in self.store.scroll(self.collection, (Match("doc_id", doc_id),))]
        if not points:
            raise NotFound(f"document {doc_id!r} not found", doc_id=doc_id)
        points.sort(key=lambda p: p.get("chunk_index", 0))
        head = _doc_summary(points[0])
        return Document(
            doc_id=doc_id,
            title=head["title"],
            source=head["source"],
            content_hash=head["content_hash"],
            metadata=head["metadata"],
            chunks=[Hit.from_payload(p, 0.0) for p in points],
        )

    # -- lifecycle -----------------------------------------------------------------

    def warm_up(self) -> None:
        """Load the embedding model and the Chinese dictionary before the first request."""
        self.engine.warm_up()

    def close(self) -> None:
        """Flush; release the store if this knowledge base owns it."""
        if self._closed:
            return
        self._closed = True
        self.flush()
        if self._owns_engine:
            self.engine.close()

    def __enter__(self) -> "KnowledgeBase":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _doc_summary(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "doc_id": payload.get("doc_id", ""),
        "title": payload.get("title", ""),
        "source": payload.get("source", ""),
        "chunk_count": payload.get("chunk_count", 0),
        "content_hash": payload.get("content_hash", ""),
        "metadata": dict(payload.get("meta") or {}),
    }
