"""Re-index a collection to another embedder or chunk size without downtime, losing no write.

The steps, for a collection users call C:

1. Drop versions a killed re-index left unfinished (newer than the live one,
   never aliased, so never read or written). On the server store a plain C
   first moves to `C.v1` behind the alias C (vectors copied, same model):
   Qdrant keeps aliases and collections in one namespace.
2. Build `C.v<N>` (N one past every version so far; a plain C counts as
   version 1) with its own manifest, from the chunk texts stored in the live
   version, or from the original files when the chunk size changes.
3. Catch up, writers still running: documents whose complete version in the
   old collection differs from what the new one mirrors are copied again (or
   deleted); a document half written at that moment waits for a later pass.
4. Optimize the new version. Then, holding the old version's writer lock,
   catch up once more, switch the alias C (a manifest pointer, aliases.json,
   on the embedded store; a Qdrant alias on the server) and mark the old
   version retired. The engine forgets its cached knowledge base, so the
   next request resolves the alias again; requests already reading finish on
   the old version with the old model, so no request mixes models.
5. On the server store, follow the old version for FOLLOW_S after the last
   change seen there: other processes write it until their cached alias
   expires (ALIAS_RECHECK_S). Their writes are carried over, unless the new
   version has been written for that document since the switch (that write
   is newer, and stays).
6. Keep the old versions until asked (`drop_old`), and then only after a
   grace period longer than any replica's alias re-check.

What a write can count on (the guarantee):

- In this process, no write is lost: a write session takes its version's
  writer lock, and one that gets it after the switch finds the version
  retired and raises VersionRetired before writing; the knowledge base's
  write methods and the ingest pipeline then write through the live version
  (engine/writes.py). A write holding the lock at the switch finishes first
  and is caught up in step 4.
- On the embedded store only this process can open the shards, so that is
  every write.
- On the server store, a write of another process (a replica, `zhiku
  ingest` elsewhere) that lands in the old version is carried over when it
  is complete within FOLLOW_S of the previous change there (FOLLOW_MAX_S at
  most). Not covered: a write session of another process that stays open
  past that (a long ingest run started before the switch, a library
  KnowledgeBase kept open: run them again), and, on a first re-index of a
  plain collection, writes in the milliseconds of step 1's drop (lost or
  NotFound).
- One re-index of a collection at a time: a second one in this process is
  refused (AlreadyExists); across processes, run one.

A kill -9 converges: before the switch the alias and the live version are
untouched and the half-built version is dropped by the next re-index (and
reported, then dropped, by `zhiku check --repair`); after it the new version
is complete and live, and the old one is kept as after any re-index.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from zhiku.engine.embedders import build_embedder
from zhiku.engine.engine import ALIAS_RECHECK_S, Engine
from zhiku.engine.errors import AlreadyExists, InvalidRequest
from zhiku.engine.filters import Match
from zhiku.engine.reindex_sync import catch_up, chunk_from_payload, complete_documents, follow
from zhiku.engine.settings import EmbedSettings
from zhiku.engine.stores.base import CollectionSpec, VectorStore, version_name, version_of
from zhiku.engine.stores.edge import EdgeStore
from zhiku.engine.writes import collection_lock

if TYPE_CHECKING:
    from zhiku.engine.kb import KnowledgeBase

Progress = Callable[[int, int], None]
ReadFiles = Callable[["KnowledgeBase", list[str]], object]
# Chunks embedded per batch while copying.
COPY_BATCH = 256
# Wait this long before dropping old versions, so replicas that cached the old
# alias target (they re-check every ALIAS_RECHECK_S) have moved on.
DROP_GRACE_S = ALIAS_RECHECK_S + 1.0
# After the switch, watch the old version for writes of other processes this
# long after the last one seen: longer than a replica trusts its cached alias
# (ALIAS_RECHECK_S) plus a write it began just before re-checking.
FOLLOW_S = ALIAS_RECHECK_S + 2.0

log = logging.getLogger("zhiku.reindex")
_RUNNING: set[tuple[int, str]] = set()  # (id of the store, collection) re-indexing in this process
_RUNNING_GUARD = threading.Lock()


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
    followed: int = 0  # documents other processes wrote to the old version after the switch, carried over
    discarded: list[str] = field(default_factory=list)  # versions a killed re-index left unfinished


@contextmanager
def _one_at_a_time(store: VectorStore, collection: str) -> Iterator[None]:
    """Refuse a second re-index of a collection in this process (it would discard the first one's build)."""
    key = (id(store), collection)
    with _RUNNING_GUARD:
        if key in _RUNNING:
            raise AlreadyExists(f"a re-index of {collection!r} is already running", collection=collection)
        _RUNNING.add(key)
    try:
        yield
    finally:
        with _RUNNING_GUARD:
            _RUNNING.discard(key)


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
    with _one_at_a_time(engine.store, collection):
        return _reindex(engine, collection, embed, chunk_size, drop_old, progress, read_files)


def _reindex(
    engine: Engine,
    collection: str,
    embed: EmbedSettings,
    chunk_size: int | None,
    drop_old: bool,
    progress: Progress | None,
    read_files: ReadFiles | None,
) -> ReindexResult:
    t0 = time.perf_counter()
    store = engine.store
    _finish_move(engine.store, collection)
    discarded = discard_unfinished(engine, collection)
    old = engine.kb(collection)
    rechunk = chunk_size is not None and chunk_size != old.manifest.chunk.size
    if rechunk and read_files is None:
        raise InvalidRequest("changing the chunk size needs the ingest pipeline to re-read the files")
    chunk = engine.settings.chunk.model_copy(update={"size": chunk_size} if chunk_size else {})
    settings = engine.settings.model_copy(update={"embed": embed, "chunk": chunk})
    sources = _sources(old) if rechunk else {}
    if _needs_move(store, collection):
        _move_behind_alias(engine, collection)
        old = engine.kb(collection)
    physical = version_name(collection, next_version(store, collection))
    # A private engine on the same store builds the new version with the new model.
    embedder = build_embedder(embed)
    embedder.warm_up()  # some models know their dimension only once loaded
    builder = Engine(settings, store=store, embedder=embedder)
    new = None
    try:
        new = builder.kb(physical, create=True)
        # mirror: what the new version holds, as the old version's doc -> content hash.
        if rechunk:
            mirror = complete_documents(old, None)
            read_files(new, sorted(set(sources.values())))  # type: ignore[misc]
        else:
            _copy_chunks(old, new, old.store.scroll(old.collection), old.count(), progress)
            mirror = complete_documents(new, None)
        caught_up = catch_up(old, new, mirror, rechunk)  # most of the build's writes, writers still running
        new.optimize()
        with collection_lock(store, old.collection).held():
            # No writer of this process can touch the old version from here on.
            caught_up += catch_up(old, new, mirror, rechunk)
            new.flush()
            at_switch = complete_documents(new, None)
            _switch(engine, collection, old.collection, physical)
    except BaseException:
        if new is not None and store.resolve(collection) != physical:  # ours, never live: remove it
            store.drop_collection(physical)
        raise
    finally:
        builder.leg_pool.shutdown(wait=True)
    followed = follow(old, new, mirror, at_switch, follow_seconds(store), rechunk)
    chunks, documents = new.count(), new.count_documents()
    dropped: list[str] = []
    if drop_old:
        time.sleep(max(0.0, DROP_GRACE_S - follow_seconds(store)))
        dropped = drop_old_versions(engine, collection)
    return ReindexResult(
        collection, old.collection, physical, chunks, documents, caught_up,
        round(time.perf_counter() - t0, 3), dropped, followed, discarded,
    )


def follow_seconds(store: VectorStore) -> float:
    """How long a re-index watches the old version after its switch: not at all on the
    embedded store, whose shards only this process can open, so every writer is ours."""
    return 0.0 if isinstance(store, EdgeStore) else FOLLOW_S


def unfinished_versions(store: VectorStore, collection: str) -> list[str]:
    """Versions of `collection` a re-index began and never switched to (none while one runs in this process)."""
    with _RUNNING_GUARD:
        if (id(store), collection) in _RUNNING:
            return []
    return _unfinished(store, collection)


def _unfinished(store: VectorStore, collection: str) -> list[str]:
    # Newer than the live version (any version while the live one is the plain
    # collection): no alias ever pointed at them, so no reader or writer did.
    live_n = version_of(store.resolve(collection), collection) or 0
    return [n for n in store.list_collections() if (version_of(n, collection) or 0) > live_n]


def discard_unfinished(engine: Engine, collection: str) -> list[str]:
    """Drop what a killed re-index left half built (never live, so nothing is lost)."""
    dropped = _unfinished(engine.store, collection)
    for name in dropped:
        log.warning("re-index: dropping %r, left unfinished by an interrupted re-index", name)
        engine.store.drop_collection(name)
    return dropped


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


def _switch(engine: Engine, collection: str, old: str, new: str) -> None:
    """Point the alias at the new version, retire the old one (its lock is held) and make this engine see it now."""
    engine.store.set_alias(collection, new)
    collection_lock(engine.store, old).retired = True
    engine.forget(collection)


def _needs_move(store: VectorStore, collection: str) -> bool:
    """Qdrant keeps aliases and collections in one namespace: a plain collection must move before an alias takes its name."""
    return not isinstance(store, EdgeStore) and collection not in store.aliases()


def _finish_move(store: VectorStore, collection: str) -> None:
    """A move killed between dropping plain C and creating the alias left only `C.v1`: alias it."""
    v1 = version_name(collection, 1)
    if not store.has_collection(collection) and collection not in store.aliases() and store.has_collection(v1):
        log.warning("re-index: %r was moved to %r but not aliased (an interrupted re-index); aliasing it", collection, v1)
        store.set_alias(collection, v1)


def _move_behind_alias(engine: Engine, collection: str) -> None:
    """First re-index on the server store: move plain C to `C.v1` behind the alias C (vectors copied, same model).

    Done before the build, so that another process still writing to C by its
    name writes through the alias into a version of the same model. Writes of
    other processes that land between the last catch-up and the drop (a few
    milliseconds) are lost, and those between the drop and the alias get
    NotFound; then every replica has FOLLOW_S to re-resolve C before the build.
    """
    store = engine.store
    v1 = version_name(collection, 1)
    if store.has_collection(v1):  # a move a kill interrupted: C is still plain, so v1 never was live
        store.drop_collection(v1)
    copy_collection(store, collection, store, v1)
    old, moved = engine.kb(collection), engine.kb(v1)
    mirror = complete_documents(moved, None)
    catch_up(old, moved, mirror, False)
    with collection_lock(store, collection).held():
        catch_up(old, moved, mirror, False)
        moved.flush()
        store.drop_collection(collection)
        _switch(engine, collection, collection, v1)
    engine.forget(v1)
    time.sleep(FOLLOW_S)


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
    # The copy keeps the source's layout (whole or in parts) as well as its vectors.
    dst.create_collection(CollectionSpec(target, dim, src.dense_parts(name)))
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
