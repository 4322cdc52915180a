"""KnowledgeBase: the library API other apps (and our CLI, server and eval) use."""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from zhiku.engine.aio import run_in_thread
from zhiku.engine.bm25 import encode_document
from zhiku.engine.errors import ConfigError, InvalidRequest, NotFound
from zhiku.engine.filters import Match, MatchAny, parse_filters
from zhiku.engine.manifest import check_compatible, length_stats, new_manifest
from zhiku.engine.engine import Engine
from zhiku.engine.settings import Settings, load_settings
from zhiku.engine.search import MODES, Searcher, SearchRequest
from zhiku.engine.stores.base import CollectionSpec
from zhiku.engine.textsplit import split_text
from zhiku.engine.tokenize import tokenize
from zhiku.engine.types import Chunk, Hit, Point

if TYPE_CHECKING:
    from zhiku.engine.llm.answer import Answer, AskEvent
    from zhiku.engine.llm.ask import History
    from zhiku.engine.llm.classify import Classification, Example, Labels
    from zhiku.engine.llm.extract import Extraction, Schema
    from zhiku.engine.llm.service import LLMService

__all__ = ["MODES", "Document", "KnowledgeBase", "content_hash", "indexed_text", "point_id"]
_POINT_NS = uuid.UUID("6f1c2a4e-3b7d-4e59-9a53-0d8e7c1b2a90")


def point_id(chunk_id: str) -> str:
    """The store's point id for a chunk id (Qdrant wants UUIDs)."""
    return str(uuid.uuid5(_POINT_NS, chunk_id))


def indexed_text(chunk: Chunk) -> str:
    """What both legs index: the title gives every chunk its document's topic."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


def content_hash(text: str, metadata: Mapping[str, Any] | None = None) -> str:
    """A stable hash of a document's text and metadata."""
    h = hashlib.sha256(text.encode("utf-8"))
    if metadata:
        h.update(json.dumps(metadata, sort_keys=True, ensure_ascii=False, default=str).encode())
    return h.hexdigest()


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


class KnowledgeBase:
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

    def _setup(self, engine: Engine, collection: str) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.store = engine.store
        self.embedder = engine.embedder
        self.collection = collection
        self.searcher = Searcher(self.store, self.embedder, collection, engine.leg_pool)
        self._write_lock = threading.Lock()
        self._closed = False
        exists = self.store.has_collection(collection)
        manifest = self.store.read_manifest(collection) if exists else None
        if manifest is None:
            if exists and self.store.count(collection) > 0:
                raise ConfigError(
                    f"collection {collection!r} has data but no manifest; it was not built by zhiku"
                )
            # No manifest on an empty collection: a create interrupted before
            # its manifest was written; finish it.
            manifest = new_manifest(self.settings, self.embedder)
            if not exists:
                self.store.create_collection(CollectionSpec(collection, self.embedder.dim))
            self.store.write_manifest(collection, manifest)
        check_compatible(collection, manifest, self.embedder)
        # Open the collection now: an embedded store locks it here, so a second
        # process fails at open with StoreLocked, not on its first query.
        self.store.count(collection)
        self.manifest = manifest
        self._stats = length_stats(manifest)

    # -- writing -------------------------------------------------------------------

    def add_texts(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[str]:
        """Add or replace documents; long texts are chunked. Returns the document ids."""
        if ids is not None and len(ids) != len(texts):
            raise InvalidRequest("ids and texts differ in length")
        if metadatas is not None and len(metadatas) != len(texts):
            raise InvalidRequest("metadatas and texts differ in length")
        doc_ids: list[str] = []
        chunks: list[Chunk] = []
        empty = self.count() == 0
        replaced: dict[str, str] = {}
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidRequest(f"text {i} is not a string")
            meta = dict(metadatas[i] or {}) if metadatas is not None else {}
            digest = content_hash(text, meta)
            doc_id = str(ids[i]) if ids is not None else f"doc-{digest[:16]}"
            doc_ids.append(doc_id)
            if not empty and self._is_current(doc_id, digest):
                continue
            replaced[doc_id] = digest
            chunks.extend(self.chunk_document(doc_id, text, digest, meta))
        self.add_chunks(chunks)
        self.remove_stale(replaced)
        self.flush()
        return doc_ids

    def add_files(
        self,
        paths: str | Path | Sequence[str | Path],
        *,
        metadata: Mapping[str, Any] | None = None,
        prune: bool = False,
        dry_run: bool = False,
        workers: int | None = None,
    ) -> Any:
        """Ingest files and folders incrementally (zhiku.ingest); returns the run's summary."""
        from zhiku.ingest.pipeline import IngestOptions, ingest_paths

        options = IngestOptions(
            meta=dict(metadata or {}), prune=prune, dry_run=dry_run,
            **({} if workers is None else {"workers": workers}),
        )
        return ingest_paths(self, [paths] if isinstance(paths, (str, Path)) else list(paths), options)

    def chunk_document(
        self, doc_id: str, text: str, digest: str, metadata: Mapping[str, Any]
    ) -> list[Chunk]:
        """Cut one plain-text document into chunks with deterministic ids."""
        meta = dict(metadata)
        title = str(meta.pop("title", "") or "")
        source = str(meta.pop("source", "") or "")
        pieces = split_text(
            text, self.settings.chunk.size, self.settings.chunk.overlap, self.embedder.count_tokens
        ) or [""]
        return [
            Chunk(
                doc_id=doc_id,
                chunk_id=f"{doc_id}#{digest[:12]}-{n}",
                chunk_index=n,
                text=piece,
                content_hash=digest,
                chunk_count=len(pieces),
                title=title,
                source=source,
                metadata=meta,
            )
            for n, piece in enumerate(pieces)
        ]

    def _is_current(self, doc_id: str, digest: str) -> bool:
        # Current = every chunk of this version present and nothing else of the doc.
        points = list(self.store.scroll(self.collection, (Match("doc_id", doc_id),)))
        if not points:
            return False
        expected = points[0][1].get("chunk_count")
        return len(points) == expected and all(p.get("content_hash") == digest for _, p in points)

    def remove_stale(self, current: Mapping[str, str]) -> int:
        """Delete chunks of these documents whose content hash is not the current one."""
        if not current:
            return 0
        stale = [
            pid
            for pid, payload in self.store.scroll(
                self.collection, (MatchAny("doc_id", tuple(current)),)
            )
            if payload.get("content_hash") != current.get(payload.get("doc_id", ""))
        ]
        if stale:
            with self._write_lock:
                self.store.delete_points(self.collection, stale)
        return len(stale)

    def prepare_points(self, chunks: Sequence[Chunk], dense: np.ndarray | None = None) -> list[Point]:
        """Embed (unless vectors are given) and BM25-encode chunks into store points."""
        if not chunks:
            return []
        texts = [indexed_text(c) for c in chunks]
        if dense is None:
            dense = self.embedder.embed_documents(texts)
        token_lists = [tokenize(t) for t in texts]
        with self._write_lock:
            self._stats.add(len(t) for t in token_lists)
            avgdl = self._stats.avgdl
        k1, b = self.manifest["bm25"]["k1"], self.manifest["bm25"]["b"]
        return [
            Point(point_id(c.chunk_id), dense[i], encode_document(toks, k1, b, avgdl), c.payload())
            for i, (c, toks) in enumerate(zip(chunks, token_lists))
        ]

    def write_points(self, points: Sequence[Point]) -> None:
        """Upsert prepared points in batches."""
        batch = self.settings.store.upsert_batch
        with self._write_lock:
            for i in range(0, len(points), batch):
                self.store.upsert(self.collection, points[i : i + batch])

    def add_chunks(self, chunks: Sequence[Chunk]) -> int:
        """Embed, encode and store pre-made chunks; returns how many were written."""
        self.write_points(self.prepare_points(chunks))
        return len(chunks)

    def delete(self, ids: Iterable[str]) -> None:
        """Delete documents (all their chunks) by document id."""
        ids = tuple(str(i) for i in ids)
        if ids:
            with self._write_lock:
                self.store.delete_where(self.collection, (MatchAny("doc_id", ids),))
                self.store.flush(self.collection)

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

    # -- LLM abilities (engine/llm) ----------------------------------------------------

    @functools.cached_property
    def llm(self) -> "LLMService":
        """The LLM service grounded in this collection (the model loads on first use)."""
        from zhiku.engine.llm.rerank import build_reranker
        from zhiku.engine.llm.service import LLMService

        ask = self.settings.ask
        reranker = build_reranker(ask.rerank, ask.rerank_model, self.settings.llm.threads)
        return LLMService(
            self.engine.generator, self.search, ask, reranker, self.get_document, self.embedder.relevance_floors
        )

    def ask(
        self,
        question: str,
        history: "History | None" = None,
        stream: bool = False,
        filters: Mapping[str, Any] | None = None,
        top_k: int | None = None,
    ) -> "Answer | Iterator[AskEvent]":
        """A grounded Answer with checked citations, or with stream=True an iterator of events."""
        if stream:
            return self.llm.ask_stream(question, history, filters=filters, top_k=top_k)
        return self.llm.ask(question, history, filters=filters, top_k=top_k)

    def summarize(
        self,
        texts: str | Sequence[str] | None = None,
        length: str = "short",
        doc_ids: Sequence[str] = (),
        query: str | None = None,
        top_k: int = 10,
        filters: Mapping[str, Any] | None = None,
    ) -> str:
        """Summarize texts, stored documents and/or search results."""
        return self.llm.summarize(texts, length, doc_ids, query, top_k, filters)

    def extract(self, text: str, schema: "Schema", retries: int | None = None) -> "Extraction":
        """Extract JSON valid against a JSON Schema or pydantic model."""
        return self.llm.extract(text, schema, retries)

    def classify(
        self, text: str, labels: "Labels", examples: Sequence["Example"] = (), multi_label: bool = False
    ) -> "Classification":
        """Classify a text into labels with a confidence."""
        return self.llm.classify(text, labels, examples, multi_label)

    def rewrite(self, text: str, style: str = "polish", target: str | None = None) -> str:
        """Polish, correct, simplify or translate a text."""
        return self.llm.rewrite(text, style, target)

    def generate(
        self, prompt: str, grounded: bool = False, top_k: int = 5, filters: Mapping[str, Any] | None = None
    ) -> str:
        """Free generation, optionally grounded in this collection's search results."""
        return self.llm.generate(prompt, grounded, top_k, filters)

    aask = run_in_thread(ask)

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
        self.embedder.warm_up()
        tokenize("warm up 预热")

    def flush(self) -> None:
        """Make writes durable and record the BM25 length statistics."""
        with self._write_lock:
            self.manifest["bm25"]["docs"] = self._stats.docs
            self.manifest["bm25"]["total_len"] = self._stats.total_len
            self.store.write_manifest(self.collection, self.manifest)
            self.store.flush(self.collection)

    def optimize(self) -> None:
        """Build the HNSW and payload indexes (an explicit step, never on a request path)."""
        self.flush()
        self.store.optimize(self.collection)

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
