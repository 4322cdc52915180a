"""Snapshot, restore and migrate collections; every copy keeps the stored vectors.

- Embedded store: a snapshot is a tar of the collection's folder (shard and
  manifest) taken after a flush while the collection's writer lock is held,
  so no write lands half in it; restore unpacks it under a name that must be free.
- Server store: Qdrant's own snapshot API (the snapshot stays on the server;
  restore takes its URL or a file:// path on the server).
- Migrate: embedded -> server by re-upserting every point with its vectors (no
  re-embedding), then a verification step: equal counts, and for a sample of
  stored points, their own dense and BM25 vectors as queries return the same
  top-10 ids on both sides.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from zhiku.engine.engine import Engine
from zhiku.engine.errors import AlreadyExists, InvalidRequest
from zhiku.engine.reindex import Progress, copy_collection
from zhiku.engine.stores.base import VectorStore, version_name
from zhiku.engine.types import Point, ScoredPoint

SNAPSHOT_FORMAT = 1
_META = "zhiku-snapshot.json"
# Stored points whose vectors serve as the verification queries of a migrate.
VERIFY_SAMPLE = 100
VERIFY_TOP_K = 10
# Two engines' scores for one point agree to float32 precision; 1e-4 leaves margin.
SCORE_TOLERANCE = 1e-4


def snapshot_embedded(engine: Engine, collection: str, dest: Path) -> Path:
    """Write a consistent tar of one collection (the version its name resolves to) to `dest`."""
    kb = engine.kb(collection)
    dest = Path(dest)
    with tempfile.TemporaryDirectory(dir=dest.parent if dest.parent.exists() else None) as tmp:
        with kb.writing() as session:  # the writer lock: no write lands while the files are copied
            session.flush()
            engine.store.snapshot_to(kb.collection, Path(tmp) / "collection")  # type: ignore[attr-defined]
        meta = {"format": SNAPSHOT_FORMAT, "collection": collection, "version": kb.collection,
                "created_at": time.time(), "chunks": kb.count()}
        (Path(tmp) / _META).write_text(json.dumps(meta), encoding="utf-8")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(dest, "w") as tar:
            tar.add(Path(tmp) / _META, arcname=_META)
            tar.add(Path(tmp) / "collection", arcname="collection")
    return dest


def restore_embedded(engine: Engine, src: Path, collection: str | None = None) -> str:
    """Unpack a snapshot as `collection` (default: the name it was taken from); returns the name."""
    with tempfile.TemporaryDirectory(dir=engine.settings.data_dir if engine.settings.data_dir.exists() else None) as tmp:
        try:
            with tarfile.open(src) as tar:
                tar.extractall(tmp, filter="data")
            meta = json.loads((Path(tmp) / _META).read_text(encoding="utf-8"))
        except (OSError, tarfile.TarError, ValueError) as exc:
            raise InvalidRequest(f"{src} is not a zhiku snapshot: {exc}") from exc
        if meta.get("format") != SNAPSHOT_FORMAT:
            raise InvalidRequest(f"{src}: unknown snapshot format {meta.get('format')!r}")
        name = collection or str(meta["collection"])
        if name in engine.list_collections() or engine.versions(name):
            raise AlreadyExists(
                f"collection {name!r} already exists; restore under another name or delete it first",
                collection=name,
            )
        # A re-indexed collection comes back behind an alias, so its own model
        # (recorded in its manifest) serves it, as it did when it was taken.
        physical = name if meta["version"] == meta["collection"] else version_name(name, 1)
        engine.store.restore_from(physical, Path(tmp) / "collection")  # type: ignore[attr-defined]
        if physical != name:
            engine.store.set_alias(name, physical)
    engine.forget(name)
    return name


def snapshot_server(engine: Engine, collection: str) -> str:
    """Ask Qdrant for a snapshot of the collection's live version; returns the snapshot's name."""
    return engine.store.create_snapshot(engine.store.resolve(collection))  # type: ignore[attr-defined]


def restore_server(engine: Engine, location: str, collection: str) -> str:
    """Recover a collection on the server from a snapshot URL or server-side file:// path.

    It comes back as `<name>.v1` behind the alias `<name>`, so a snapshot of a
    re-indexed collection is served by the model its manifest records.
    """
    if collection in engine.list_collections() or engine.versions(collection):
        raise AlreadyExists(f"collection {collection!r} already exists; restore under another name",
                            collection=collection)
    physical = version_name(collection, 1)
    engine.store.recover_snapshot(physical, location)  # type: ignore[attr-defined]
    engine.store.set_alias(collection, physical)
    engine.forget(collection)
    return collection


@dataclass(slots=True)
class Verification:
    """How a copy compares with its source."""

    source_count: int
    target_count: int
    queries: int
    mismatched: list[str] = field(default_factory=list)  # point ids whose top-10 differ

    @property
    def ok(self) -> bool:
        return self.source_count == self.target_count and not self.mismatched


@dataclass(slots=True)
class Migrated:
    """One collection moved: points copied and the verification."""

    collection: str
    points: int
    verification: Verification


def verify_copy(
    src: VectorStore, name: str, dst: VectorStore, target: str, sample: int = VERIFY_SAMPLE
) -> Verification:
    """Equal counts, and equal top-10 ids for a sample of stored points used as queries."""
    total = src.count(name)
    step = max(1, total // max(sample, 1))
    probes = [p for i, p in enumerate(src.scroll_points(name)) if i % step == 0][:sample]
    result = Verification(total, dst.count(target), 2 * len(probes))
    for p in probes:
        for leg in (_dense_leg, _sparse_leg):
            if not same_ranking(leg(src, name, p), leg(dst, target, p)):
                result.mismatched.append(p.id)
                break
    return result


def same_ranking(a: list[ScoredPoint], b: list[ScoredPoint]) -> bool:
    """Equal scores rank by rank, and the same ids at each score; only the order
    within a tie, and which tied points the limit cut at the last score, may differ
    (engines break ties differently)."""
    if len(a) != len(b) or any(abs(x.score - y.score) > SCORE_TOLERANCE for x, y in zip(a, b)):
        return False
    return _tie_groups(a) == _tie_groups(b)


def _tie_groups(points: list[ScoredPoint]) -> list[set[str]]:
    """Ids grouped by equal score (within the tolerance), best first, less the last group."""
    groups: list[tuple[float, set[str]]] = []
    for p in points:
        if groups and abs(groups[-1][0] - p.score) <= SCORE_TOLERANCE:
            groups[-1][1].add(p.id)
        else:
            groups.append((p.score, {p.id}))
    return [ids for _, ids in groups[:-1]]  # the limit may cut the last tie anywhere


def _dense_leg(store: VectorStore, name: str, p: Point) -> list[ScoredPoint]:
    return store.query_dense(name, p.dense, VERIFY_TOP_K, with_payload=False)


def _sparse_leg(store: VectorStore, name: str, p: Point) -> list[ScoredPoint]:
    return store.query_sparse(name, p.sparse, VERIFY_TOP_K, with_payload=False)


def migrate(
    source: Engine,
    target: VectorStore,
    collections: list[str] | None = None,
    progress: Callable[[str], Progress] | None = None,
    sample: int = VERIFY_SAMPLE,
) -> list[Migrated]:
    """Copy collections (their live versions) from `source` into `target` under the same names."""
    names = collections or source.list_collections()
    taken = [n for n in names if target.has_collection(n) or target.has_collection(source.store.resolve(n))]
    if taken:
        raise AlreadyExists(f"the target already has collection(s) {taken}; delete them or pick others")
    out = []
    for name in names:
        physical = source.store.resolve(name)
        if not source.store.has_collection(physical):
            raise InvalidRequest(f"collection {name!r} does not exist in the source")
        # Same physical name and alias as the source, so a re-indexed collection
        # keeps its own model on the server too.
        points = copy_collection(source.store, physical, target, physical, progress(name) if progress else None)
        if physical != name:
            target.set_alias(name, physical)
        out.append(Migrated(name, points, verify_copy(source.store, physical, target, name, sample)))
    return out
