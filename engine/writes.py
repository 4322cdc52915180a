"""Writing to one collection: write sessions under the collection's lock, and the writer protocol.

Every write to a collection (points, old-version removal, deletes, the
manifest at creation) goes through a `WriteSession`, and a session exists
only while it holds the collection's one lock per (store object, collection):
two `Engine`s sharing a store, a library user and the server all serialise
on it, and forgetting the lock is impossible. A whole add (`add_texts`, an
ingest run) is one session, from "what is stored" to the last stale-version
removal, so two concurrent adds of one document can't delete each other's
version. The lock is not re-entrant: inside a session, write through it.

A re-index retires the old version under its lock as it switches the alias
(engine/reindex.py): a session on a retired version raises VersionRetired
before writing anything, and the knowledge base's write methods then write
through the live version, so no write of this process lands in a version
that is no longer live.
"""

from __future__ import annotations

import functools
import threading
import weakref
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence, TypeVar

import numpy as np

from zhiku.engine.bm25 import encode_document
from zhiku.engine.embedders.base import Embedder
from zhiku.engine.errors import ConfigError, InvalidRequest, VersionRetired
from zhiku.engine.filters import Match, MatchAny
from zhiku.engine.identity import (
    DocState, chunk_id, doc_states, indexed_text, point_id, text_doc_id, text_hash,
)
from zhiku.engine.manifest import Manifest
from zhiku.engine.settings import Settings
from zhiku.engine.stores import ensure_collection
from zhiku.engine.stores.base import CollectionSpec, VectorStore
from zhiku.engine.textsplit import split_text
from zhiku.engine.tokenize import tokenizer
from zhiku.engine.types import Chunk, Point

if TYPE_CHECKING:
    from zhiku.engine.engine import Engine

_LOCKS: "weakref.WeakKeyDictionary[Any, dict[str, WriterLock]]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()
# Ids per filter, so a long list never makes one huge filter.
BATCH_IDS = 256


class WriterLock:
    """A collection's writer lock: a plain lock that fails loudly where it would deadlock.

    Not an RLock: an ingest run takes it on its main thread and writes
    through the session on its writer thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: int | None = None
        # Set by a re-index, holding this lock, as it switches away from this version.
        self.retired = False

    @contextmanager
    def held(self) -> Iterator[None]:
        if self._holder == threading.get_ident():
            raise RuntimeError("this thread already holds the collection's writer lock; write through its session")
        with self._lock:
            self._holder = threading.get_ident()
            try:
                yield
            finally:
                self._holder = None


def collection_lock(store: VectorStore, collection: str) -> WriterLock:
    """The one writer lock of a collection in this store object."""
    with _LOCKS_GUARD:
        per_store = _LOCKS.setdefault(store, {})
        return per_store.setdefault(collection, WriterLock())


def open_manifest(store: VectorStore, collection: str, settings: Settings, embedder: Embedder) -> Manifest:
    """The collection's manifest, creating the collection (and writing its manifest, once) if needed."""
    lock = collection_lock(store, collection)
    with lock.held():
        exists = store.has_collection(collection)
        if not exists:
            lock.retired = False  # a name made again after its collection was dropped
        manifest = Manifest.load(store, collection, settings) if exists else None
        if manifest is None:
            if exists and store.count(collection) > 0:
                raise ConfigError(
                    f"collection {collection!r} has data but no manifest; it was not built by zhiku"
                )
            # No manifest on an empty collection: a create interrupted before
            # its manifest was written; finish it.
            manifest = Manifest.new(settings, embedder)
            if not exists:
                # Another process (a replica, an ingest run) may create it at the
                # same moment: the lock above is per process; losing the race is fine.
                ensure_collection(store, CollectionSpec(collection, embedder.dim, embedder.dense_parts))
            manifest.save(store, collection)
    manifest.check_compatible(collection, embedder)
    return manifest


@dataclass(slots=True)
class WriteSession:
    """The writes of one holder of a collection's lock (get one from `KnowledgeBase.writing()`)."""

    store: VectorStore
    collection: str
    settings: Settings
    embedder: Embedder
    manifest: Manifest

    def document_states(self, doc_ids: Sequence[str] | None = None) -> dict[str, DocState]:
        """What is stored, per document: of these ids, or of the whole collection (one scan)."""
        if not self.store.has_collection(self.collection):
            return {}
        if doc_ids is None:
            return doc_states(p for _, p in self.store.scroll(self.collection, (), 1024))
        unique = tuple(dict.fromkeys(doc_ids))
        return doc_states(
            p
            for i in range(0, len(unique), BATCH_IDS)
            for _, p in self.store.scroll(self.collection, (MatchAny("doc_id", unique[i : i + BATCH_IDS]),))
        )

    def encode(self, chunks: Sequence[Chunk], dense: np.ndarray | None = None) -> list[Point]:
        """Embed (unless vectors are given) and BM25-encode chunks into store points.

        A pure function of the chunks and the manifest: avgdl is fixed, so
        what else is written, before or at the same time, changes nothing.
        """
        if not chunks:
            return []
        texts = [indexed_text(c) for c in chunks]
        if dense is None:
            dense = self.embedder.embed_documents(texts)
        bm25, tokenize = self.manifest.bm25, tokenizer(self.manifest.tokenizer)
        return [
            Point(point_id(c.chunk_id), dense[i], encode_document(tokenize(t), bm25.k1, bm25.b, bm25.avgdl), c.payload())
            for i, (c, t) in enumerate(zip(chunks, texts))
        ]

    def write_chunks(self, chunks: Sequence[Chunk], dense: np.ndarray | None = None) -> int:
        """Embed (unless vectors are given), BM25-encode and store chunks; returns how many."""
        points = self.encode(chunks, dense)
        batch = self.settings.store.upsert_batch
        for i in range(0, len(points), batch):
            self.store.upsert(self.collection, points[i : i + batch])
        return len(points)

    def retire(self, doc_id: str, digests: Sequence[str]) -> None:
        """Remove these old versions of a document (after its new one is fully written)."""
        if digests:
            self.store.delete_where(
                self.collection, (Match("doc_id", doc_id), MatchAny("content_hash", tuple(digests)))
            )

    def delete(self, ids: Iterable[str]) -> None:
        """Delete documents (all their chunks) by document id."""
        unique = tuple(dict.fromkeys(str(i) for i in ids))
        for i in range(0, len(unique), BATCH_IDS):
            self.store.delete_where(self.collection, (MatchAny("doc_id", unique[i : i + BATCH_IDS]),))

    def flush(self) -> None:
        """Make the writes so far durable."""
        self.store.flush(self.collection)

    def optimize(self) -> None:
        """Flush, then build the HNSW and payload indexes (an explicit step, never on a request path)."""
        self.store.flush(self.collection)
        self.store.optimize(self.collection)


@contextmanager
def locked_session(session: WriteSession) -> Iterator[WriteSession]:
    """Hand out `session` while holding its collection's writer lock; VersionRetired
    (nothing written) when a re-index has switched away from the collection."""
    lock = collection_lock(session.store, session.collection)
    with lock.held():
        if lock.retired:
            raise VersionRetired(
                f"collection version {session.collection!r} was replaced by a re-index; write to the live one",
                collection=session.collection,
            )
        yield session


class DocumentWriter(Protocol):
    """What a writer of documents (zhiku.ingest) needs from a collection; KnowledgeBase is one."""

    @property
    def settings(self) -> Settings: ...
    @property
    def embedder(self) -> Embedder: ...
    @property
    def collection(self) -> str: ...

    def writing(self) -> AbstractContextManager[WriteSession]:
        """Hold the collection's writer lock for a whole add; write through the session."""
        ...

    def live(self) -> "DocumentWriter":
        """The writer of the live version (another one after a re-index switched)."""
        ...


@dataclass(slots=True)
class PlannedCollection:
    """A DocumentWriter for a collection not created yet: a dry run plans against it; nothing is created."""

    store: VectorStore
    collection: str
    settings: Settings
    embedder: Embedder

    def writing(self) -> AbstractContextManager[WriteSession]:
        """A session that finds nothing stored (a write to it raises NotFound)."""
        return locked_session(WriteSession(
            self.store, self.collection, self.settings, self.embedder, Manifest.new(self.settings, self.embedder)
        ))

    def live(self) -> "PlannedCollection":
        return self


W = TypeVar("W", bound=Callable[..., Any])


def _on_live_version(method: W) -> W:
    """Run a write method again on the live version when a re-index retired this one.

    VersionRetired comes from taking the lock, before anything is written, so
    running the whole method again there is safe.
    """

    @functools.wraps(method)
    def run(self: "DocumentWrites", *args: Any, **kw: Any) -> Any:
        try:
            return method(self, *args, **kw)
        except VersionRetired:
            return getattr(self.live(), method.__name__)(*args, **kw)

    return run  # type: ignore[return-value]


class DocumentWrites:
    """KnowledgeBase's writing half; needs `engine`, `name`, `store`, `collection`, `settings`, `embedder`, `manifest`."""

    engine: "Engine"
    name: str
    store: VectorStore
    collection: str
    settings: Settings
    embedder: Embedder
    manifest: Manifest

    def writing(self) -> AbstractContextManager[WriteSession]:
        """`with kb.writing() as session:` holds the collection's writer lock; every write goes through one."""
        return locked_session(WriteSession(self.store, self.collection, self.settings, self.embedder, self.manifest))

    def live(self) -> Any:
        """The knowledge base of the version this name stands for now (self until a re-index switches)."""
        kb = self.engine.kb(self.name)
        if kb.collection == self.collection and collection_lock(self.store, self.collection).retired:
            self.engine.forget(self.name)  # a cached alias that has not seen the switch yet
            kb = self.engine.kb(self.name)
            if kb.collection == self.collection:
                raise VersionRetired(
                    f"collection version {self.collection!r} was replaced, but {self.name!r} still resolves to it",
                    collection=self.collection,
                )
        return kb

    @_on_live_version
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
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidRequest(f"text {i} is not a string")
        metas = [dict(metadatas[i] or {}) if metadatas is not None else {} for i in range(len(texts))]
        digests = [text_hash(text, meta) for text, meta in zip(texts, metas)]
        doc_ids = [str(ids[i]) if ids is not None else text_doc_id(d) for i, d in enumerate(digests)]
        # A repeated id: the last text wins, as if added one after another.
        latest = {d: (text, digest, meta) for d, text, digest, meta in zip(doc_ids, texts, digests, metas)}
        with self.writing() as session:
            state = session.document_states(list(latest)) if self.store.count(self.collection) else {}
            chunks: list[Chunk] = []
            stale: dict[str, tuple[str, ...]] = {}
            for doc_id, (text, digest, meta) in latest.items():
                known = state.get(doc_id, DocState(doc_id))
                if known.complete(digest):
                    continue
                stale[doc_id] = known.stale(digest)
                chunks.extend(self.chunk_document(doc_id, text, digest, meta))
            session.write_chunks(chunks)
            for doc_id, old in stale.items():
                session.retire(doc_id, old)
            session.flush()
        return doc_ids

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
                chunk_id=chunk_id(doc_id, digest, n),
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

    def add_chunks(self, chunks: Sequence[Chunk], dense: np.ndarray | None = None) -> int:
        """Store pre-made chunks (ids and versions are the caller's), embedding unless vectors are given."""
        try:
            with self.writing() as session:
                return session.write_chunks(chunks, dense)
        except VersionRetired:
            if dense is not None:
                raise  # vectors of the retired version's model: the caller must embed again
            return int(self.live().add_chunks(chunks))

    @_on_live_version
    def delete(self, ids: Iterable[str]) -> None:
        """Delete documents (all their chunks) by document id."""
        with self.writing() as session:
            session.delete(ids)
            session.flush()

    @_on_live_version
    def flush(self) -> None:
        """Make writes durable."""
        with self.writing() as session:
            session.flush()

    @_on_live_version
    def optimize(self) -> None:
        """Build the HNSW and payload indexes (an explicit step, never on a request path)."""
        with self.writing() as session:
            session.optimize()
