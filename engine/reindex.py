"""Re-index a collection to another embedder or chunk size without downtime.

The steps, for a collection users call C:

1. Build `C.v<N>` (N one past every version so far; the first plain C counts
   as version 1) with its own manifest, from the chunk texts stored in the
   live version, or from the original files when the chunk size changes.
2. Catch up: documents written to the live version during the build (a new
   content hash, a new or deleted document) are copied again.
3. Optimize the new version, then switch the alias C to it in one atomic
   step: a manifest pointer (aliases.json) on the embedded store, a Qdrant
   alias on the server. The engine forgets its cached knowledge base, so the
   next request resolves the alias again; requests already running finish on
   the old version with the old model, so no request mixes models.
4. Keep the old versions until asked (`drop_old`), and then only after a
   grace period longer than any replica's alias re-check.

Searches and asks keep working throughout: they read the old version until the
switch. On the server store Qdrant cannot put an alias over a plain collection
of the same name, so the first re-index of a plain C first copies it, vectors
and all, to `C.v1`, then deletes C and creates the alias: requests that reach
C between those two calls (milliseconds) get NotFound. Later re-indexes have
no such window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from zhiku.engine.embedders import build_embedder
from zhiku.engine.engine import ALIAS_RECHECK_S, Engine
from zhiku.engine.errors import AlreadyExists, InvalidRequest
from zhiku.engine.filters import Match, MatchAny
from zhiku.engine.settings import EmbedSettings
from zhiku.engine.stores.base import CollectionSpec, VectorStore, version_name, version_of
from zhiku.engine.types import Chunk

if TYPE_CHECKING:
    from zhiku.engine.kb import KnowledgeBase

Progress = Callable[[int, int], None]
ReadFiles = Callable[["KnowledgeBase", list[str]], object]
# Chunks embedded per batch while copying.
COPY_BATCH = 256
# Wait this long before dropping old versions, so replicas that cached the old
# alias target (they re-check every ALIAS_RECHECK_S) have moved on.
DROP_GRACE_S = ALIAS_RECHECK_S + 1.0


@dataclass(slots=True)
class ReindexResult:
    """What a re-index did."""

    collection: str
    old: str
    new: str
    chunks: int
    documents: int
    caught_up: int
    seconds: float
    dropped: list[str] = field(default_factory=list)


def chunk_from_payload(payload: Mapping[str, Any]) -> Chunk:
    """The Chunk a stored payload was made from (Chunk.payload() inverted)."""
    return Chunk(
        doc_id=str(payload.get("doc_id", "")),
        chunk_id=str(payload.get("chunk_id", "")),
        chunk_index=int(payload.get("chunk_index", 0)),
        text=str(payload.get("text", "")),
        content_hash=str(payload.get("content_hash", "")),
        chunk_count=int(payload.get("chunk_count", 1)),
        title=str(payload.get("title", "")),
        section=str(payload.get("section", "")),
        source=str(payload.get("source", "")),
        metadata=dict(payload.get("meta") or {}),
    )


def next_version(store: VectorStore, collection: str) -> int:
    """One past the highest version of `collection` (a plain collection is version 1)."""
    found = [version_of(n, collection) for n in store.list_collections()]
    return max([1, *(n for n in found if n is not None)]) + 1


def reindex(
    engine: Engine,
    collection: str,
    embed: EmbedSettings,
    chunk_size: int | None = None,
    drop_old: bool = False,
    progress: Progress | None = None,
    read_files: ReadFiles | None = None,
) -> ReindexResult:
    """Build a new version of `collection` with `embed` (and chunk size), then switch to it.

    A new chunk size needs the original files, read by `read_files(kb, roots)`
    (the ingest pipeline; the engine never imports ingest, so callers pass it).
    """
    t0 = time.perf_counter()
    store = engine.store
    old = engine.kb(collection)
    rechunk = chunk_size is not None and chunk_size != old.manifest.chunk.size
    if rechunk and read_files is None:
        raise InvalidRequest("changing the chunk size needs the ingest pipeline to re-read the files")
    chunk = engine.settings.chunk.model_copy(update={"size": chunk_size} if chunk_size else {})
    settings = engine.settings.model_copy(update={"embed": embed, "chunk": chunk})
    sources = _sources(old) if rechunk else {}
    physical = version_name(collection, next_version(store, collection))
    # A private engine on the same store builds the new version with the new model.
    embedder = build_embedder(embed)
    embedder.warm_up()  # some models know their dimension only once loaded
    builder = Engine(settings, store=store, embedder=embedder)
    new = None
    try:
        new = builder.kb(physical, create=True)
        if rechunk:
            read_files(new, sorted(set(sources.values())))  # type: ignore[misc]
            caught_up = 0
        else:
            _copy_chunks(old, new, old.store.scroll(old.collection), old.count(), progress)
            caught_up = _catch_up(old, new)
        new.optimize()
        chunks, documents = new.count(), new.count_documents()
    except BaseException:
        if new is not None:  # ours, half built and never live: remove it
            store.drop_collection(physical)
        raise
    finally:
        builder.leg_pool.shutdown(wait=True)
    _switch(engine, collection, old.collection, physical)
    dropped: list[str] = []
    if drop_old:
        time.sleep(DROP_GRACE_S)
        dropped = drop_old_versions(engine, collection)
    return ReindexResult(
        collection, old.collection, physical, chunks, documents, caught_up,
        round(time.perf_counter() - t0, 3), dropped,
    )


def drop_old_versions(engine: Engine, collection: str) -> list[str]:
    """Delete every version of `collection` but the one its alias points at."""
    live = engine.store.resolve(collection)
    dropped = [n for n in engine.versions(collection) if n != live]
    for name in dropped:
        engine.store.drop_collection(name)
    return dropped


def _sources(kb: "KnowledgeBase") -> dict[str, str]:
    """doc_id -> the ingest root that gives the same doc_id again; InvalidRequest
    listing the documents whose original file is gone (or never was: add_texts)."""
    roots: dict[str, str] = {}
    missing: list[str] = []
    for _, payload in kb.store.scroll(kb.collection, (Match("chunk_index", 0),)):
        doc_id = str(payload.get("doc_id"))
        path = str((payload.get("meta") or {}).get("path") or "")
        if not path or not Path(path).is_file():
            missing.append(doc_id)
        elif Path(path).name == doc_id:
            roots[doc_id] = path  # a file given as its own root keeps its name as id
        elif path.endswith("/" + doc_id):
            roots[doc_id] = path[: -len(doc_id) - 1]  # the folder it was ingested from
        else:
            missing.append(doc_id)
    if missing:
        raise InvalidRequest(
            f"changing the chunk size re-reads the original files, but {len(missing)} document(s) "
            f"have none readable (e.g. {sorted(missing)[:5]}); re-index without --chunk-size, "
            "or re-ingest them",
            missing=sorted(missing)[:100],
        )
    return roots


def _copy_chunks(
    old: "KnowledgeBase",
    new: "KnowledgeBase",
    payloads: Iterator[tuple[str, dict[str, Any]]],
    total: int,
    progress: Progress | None,
) -> int:
    """Re-embed stored chunk texts into the new version; returns how many."""
    done, batch = 0, []
    for _, payload in payloads:
        batch.append(chunk_from_payload(payload))
        if len(batch) == COPY_BATCH:
            done += new.add_chunks(batch)
            batch = []
            if progress:
                progress(done, total)
    done += new.add_chunks(batch)
    new.flush()
    if progress:
        progress(done, total)
    return done


def _heads(kb: "KnowledgeBase") -> dict[str, str]:
    """doc_id -> content hash of each document in a version."""
    return {
        str(p.get("doc_id")): str(p.get("content_hash"))
        for _, p in kb.store.scroll(kb.collection, (Match("chunk_index", 0),))
    }


def _catch_up(old: "KnowledgeBase", new: "KnowledgeBase") -> int:
    """Copy documents changed in the old version during the build; returns how many."""
    live, built = _heads(old), _heads(new)
    changed = [d for d, h in live.items() if built.get(d) != h]
    gone = [d for d in built if d not in live]
    if changed or gone:
        new.delete([*changed, *gone])  # the new version is not live yet: replace whole documents
    if changed:
        payloads = old.store.scroll(old.collection, (MatchAny("doc_id", tuple(changed)),))
        _copy_chunks(old, new, payloads, 0, None)
    return len(changed) + len(gone)


def _switch(engine: Engine, collection: str, old: str, new: str) -> None:
    """Point the alias at the new version and make this engine see it now."""
    store = engine.store
    try:
        store.set_alias(collection, new)
    except AlreadyExists:
        # Qdrant keeps aliases and collections in one namespace: move the plain
        # collection to version 1 first (vectors copied, nothing re-embedded).
        copy_collection(store, collection, store, version_name(collection, 1))
        store.drop_collection(collection)
        store.set_alias(collection, new)
    engine.forget(collection)


def copy_collection(
    src: VectorStore, name: str, dst: VectorStore, target: str, progress: Progress | None = None,
    batch: int = COPY_BATCH,
) -> int:
    """Copy points with their vectors and the manifest: no re-embedding. Returns points copied."""
    manifest = src.read_manifest(name)
    total = src.count(name)
    points = src.scroll_points(name, batch)
    first = next(points, None)
    dim = int((manifest or {}).get("embedder", {}).get("dim") or (len(first.dense) if first else 0))
    dst.create_collection(CollectionSpec(target, dim))
    if manifest is not None:
        dst.write_manifest(target, manifest)
    done, buf = 0, [first] if first else []
    for point in points:
        buf.append(point)
        if len(buf) == batch:
            dst.upsert(target, buf)
            done += len(buf)
            buf = []
            if progress:
                progress(done, total)
    if buf:
        dst.upsert(target, buf)
        done += len(buf)
    dst.flush(target)
    if progress:
        progress(done, total)
    return done
