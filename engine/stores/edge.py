"""The embedded backend: one in-process Qdrant Edge shard per collection.

Layout under `root/collections/<name>/`: `shard/` (the Edge shard), `manifest.json`
(how the index was built, written atomically) and `.lock` (an exclusive flock
holding the owner's pid, taken when the collection is first used and kept until
`close()`, so two processes never write the same shard).

Edge runs no optimizer on its own, so writes only append to a plain segment and
queries stay brute force until `optimize()` builds the HNSW index.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import qdrant_edge as qe

from zhiku.engine.errors import AlreadyExists, ConfigError, NotFound, StoreLocked
from zhiku.engine.filters import Condition
from zhiku.engine.settings import StoreSettings
from zhiku.engine.stores._convert import (
    FilterModels,
    check_dim,
    check_limit,
    check_name,
    dense_array,
    manifest_json,
    parse_manifest,
    point_id,
    record_point,
    require_filter,
    sparse_lists,
    to_filter,
)
from zhiku.engine.stores._layout import DenseLayout
from zhiku.engine.stores.base import INDEXED_FIELDS, SPARSE, CollectionSpec
from zhiku.engine.types import Point, ScoredPoint, SparseVector


def _match_value(value: Any) -> qe.MatchValue:
    # qdrant-edge 0.9 reads a Python bool as the integer 1 (bool subclasses int),
    # so `draft == True` would never match; numpy.bool_ is not an int and arrives as a bool.
    return qe.MatchValue(value=np.bool_(value) if isinstance(value, bool) else value)


_MODELS = FilterModels(qe.Filter, qe.FieldCondition, _match_value, qe.MatchAny, qe.RangeFloat)
# IDF over the live points. The default (global) statistics come from the sparse
# index and go on counting deleted points until a vacuum, so replaced documents
# would skew BM25; this costs ~0.3 ms per query at 20k points.
_LIVE_IDF = qe.SearchParams(idf=qe.IdfParams(corpus=qe.Filter()))


@dataclass
class _Open:
    """A collection this process holds: its shard, lock file and dense layout."""

    shard: qe.EdgeShard
    lock_fd: int
    layout: DenseLayout | None

    @property
    def dim(self) -> int | None:
        return self.layout.dim if self.layout else None


class EdgeStore:
    """VectorStore on qdrant-edge shards under `root`."""

    def __init__(self, root: Path, settings: StoreSettings) -> None:
        self.root = Path(root)
        self.settings = settings
        self._open: dict[str, _Open] = {}
        self._guard = threading.Lock()

    # -- paths ---------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self.root / "collections" / check_name(name)

    def _shard_path(self, name: str) -> Path:
        return self._dir(name) / "shard"

    def _config(self, layout: DenseLayout) -> qe.EdgeConfig:
        threads = self.settings.search_threads or None  # 0 = one per CPU
        # A whole vector under cosine; parts of the unit vector under dot product.
        distance = qe.Distance.Dot if layout.split else qe.Distance.Cosine
        return qe.EdgeConfig(
            vectors={
                name: qe.EdgeVectorParams(size=size, distance=distance)
                for name, size in zip(layout.names(), layout.sizes)
            },
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            # Never hide points from reads while they wait for optimize().
            optimizers=qe.EdgeOptimizersConfig(prevent_unoptimized=False),
            max_search_threads=threads,
        )

    # -- locking and lazy opening ---------------------------------------------

    def _lock(self, name: str) -> int:
        path = self._dir(name) / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreLocked(
                f"collection {name!r} at {self._dir(name)} is in use by another process "
                f"(pid {owner})",
                collection=name,
                pid=owner,
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return fd

    def _get(self, name: str) -> _Open:
        """The open collection, opening (and locking) it on first use."""
        with self._guard:
            held = self._open.get(name)
            if held is not None:
                return held
            if not self._shard_path(name).is_dir():
                raise NotFound(f"collection {name!r} does not exist", collection=name)
            fd = self._lock(name)
            try:
                # Edge wants the full config to apply the thread count on load;
                # without a readable layout, load as stored.
                layout = _stored_layout(self._shard_path(name))
                config = self._config(layout) if layout is not None else None
                shard = qe.EdgeShard.load(str(self._shard_path(name)), config)
            except BaseException:
                _unlock(fd)
                raise
            held = _Open(shard, fd, layout)
            self._open[name] = held
            return held

    # -- collections ----------------------------------------------------------

    def list_collections(self) -> list[str]:
        base = self.root / "collections"
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / "shard").is_dir())

    def has_collection(self, name: str) -> bool:
        return self._shard_path(name).is_dir()

    def dense_parts(self, name: str) -> tuple[int, ...]:
        layout = self._get(name).layout
        return layout.parts if layout else ()

    def create_collection(self, spec: CollectionSpec) -> None:
        layout = DenseLayout.of(check_dim(spec.dim), spec.parts)
        with self._guard:
            shard_path = self._shard_path(spec.name)
            if shard_path.is_dir():
                raise AlreadyExists(f"collection {spec.name!r} already exists", collection=spec.name)
            shard_path.parent.mkdir(parents=True, exist_ok=True)
            fd = self._lock(spec.name)
            if shard_path.is_dir():  # another process made it while we looked
                _unlock(fd)
                raise AlreadyExists(f"collection {spec.name!r} already exists", collection=spec.name)
            try:
                shard = qe.EdgeShard.create(str(shard_path), self._config(layout))
                for field in INDEXED_FIELDS:
                    shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))
                shard.flush()
            except BaseException:
                # A half-made shard would make the name look taken forever.
                shutil.rmtree(shard_path, ignore_errors=True)
                _unlock(fd)
                raise
            self._open[spec.name] = _Open(shard, fd, layout)

    def drop_collection(self, name: str) -> None:
        held = self._get(name)  # holds the lock, so no other process is using it
        with self._guard:
            self._open.pop(name, None)
            held.shard.close()
            shutil.rmtree(self._shard_path(name), ignore_errors=True)
            (self._dir(name) / "manifest.json").unlink(missing_ok=True)
            (self._dir(name) / ".lock").unlink(missing_ok=True)
            _unlock(held.lock_fd)
            try:
                self._dir(name).rmdir()
            except OSError:
                pass  # something else lives there; leave it

    # -- manifest -------------------------------------------------------------

    def read_manifest(self, name: str) -> dict[str, Any] | None:
        if not self.has_collection(name):
            raise NotFound(f"collection {name!r} does not exist", collection=name)
        path = self._dir(name) / "manifest.json"
        if not path.exists():
            return None
        return parse_manifest(path.read_text(encoding="utf-8"), str(path))

    def write_manifest(self, name: str, manifest: dict[str, Any]) -> None:
        text = manifest_json(manifest)
        self._get(name)  # only the lock holder may write
        _write_atomic(self._dir(name) / "manifest.json", text)

    # -- writes ---------------------------------------------------------------

    def upsert(self, name: str, points: Sequence[Point]) -> None:
        held = self._get(name)
        batch = self.settings.upsert_batch
        for start in range(0, len(points), batch):
            chunk = [_to_edge_point(p, held.layout) for p in points[start : start + batch]]
            held.shard.update(qe.UpdateOperation.upsert_points(chunk))

    def delete_points(self, name: str, ids: Sequence[str]) -> None:
        held = self._get(name)
        if ids:
            held.shard.update(qe.UpdateOperation.delete_points([point_id(i) for i in ids]))

    def delete_where(self, name: str, conditions: Sequence[Condition]) -> None:
        held = self._get(name)
        filt = require_filter(conditions, _MODELS)
        held.shard.update(qe.UpdateOperation.delete_points_by_filter(filt))

    # -- reads ----------------------------------------------------------------

    def query_dense(
        self, name: str, vector: np.ndarray, limit: int, conditions: Sequence[Condition] = (),
        with_payload: bool = True,
    ) -> list[ScoredPoint]:
        held = self._get(name)
        checked = dense_array(vector, held.dim)
        ef = self.settings.hnsw_ef
        params = qe.SearchParams(hnsw_ef=ef) if ef else None
        layout = held.layout or DenseLayout((len(checked),))
        parts = layout.query_parts(checked)
        if len(parts) == 1:
            using, query = parts[0]
            return self._query(held, qe.Query.Nearest(query, using=using), limit, conditions, params, with_payload)
        # Several parts: each part's best, scored on the whole vector (engine/stores/_layout.py).
        return layout.search_parts(
            checked, parts, check_limit(limit),
            lambda using, query, depth: [
                p.id for p in self._query(held, qe.Query.Nearest(query, using=using), depth, conditions, params, False)
            ],
            lambda ids: held.shard.retrieve([point_id(i) for i in ids], with_payload, True),
            with_payload,
        )

    def query_sparse(
        self, name: str, vector: SparseVector, limit: int, conditions: Sequence[Condition] = (),
        with_payload: bool = True,
    ) -> list[ScoredPoint]:
        held = self._get(name)
        indices, values = sparse_lists(vector)
        if not indices:
            return []
        query = qe.Query.Nearest(qe.SparseVector(indices, values), using=SPARSE)
        return self._query(held, query, limit, conditions, _LIVE_IDF, with_payload)

    def _query(
        self,
        held: _Open,
        query: Any,
        limit: int,
        conditions: Sequence[Condition],
        params: qe.SearchParams | None = None,
        with_payload: bool = True,
    ) -> list[ScoredPoint]:
        request = qe.QueryRequest(
            limit=check_limit(limit),
            query=query,
            filter=to_filter(conditions, _MODELS),
            params=params,
            with_payload=with_payload,
            with_vector=False,
        )
        return [
            ScoredPoint(str(p.id), float(p.score), dict(p.payload or {}))
            for p in held.shard.query(request)
        ]

    def count(self, name: str, conditions: Sequence[Condition] = ()) -> int:
        held = self._get(name)
        return int(held.shard.count(qe.CountRequest(exact=True, filter=to_filter(conditions, _MODELS))))

    def scroll(
        self, name: str, conditions: Sequence[Condition] = (), batch: int = 256
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        held = self._get(name)
        filt = to_filter(conditions, _MODELS)
        offset: Any = None
        while True:
            request = qe.ScrollRequest(
                offset=offset, limit=check_limit(batch), filter=filt, with_payload=True, with_vector=False
            )
            records, offset = held.shard.scroll(request)
            for record in records:
                yield str(record.id), dict(record.payload or {})
            if offset is None:
                return

    def retrieve(self, name: str, ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        held = self._get(name)
        wanted = [point_id(i) for i in ids]
        if not wanted:
            return []
        found = {str(r.id): dict(r.payload or {}) for r in held.shard.retrieve(wanted, True, False)}
        return [(i, found[i]) for i in dict.fromkeys(wanted) if i in found]

    # -- lifecycle ------------------------------------------------------------

    def flush(self, name: str) -> None:
        self._get(name).shard.flush()

    def optimize(self, name: str) -> None:
        held = self._get(name)
        held.shard.optimize()
        held.shard.flush()

    def close(self) -> None:
        """Flush and close every open shard and release their locks."""
        with self._guard:
            opened, self._open = self._open, {}
        for held in opened.values():
            try:
                held.shard.flush()
                held.shard.close()
            finally:
                _unlock(held.lock_fd)

    # -- aliases: one JSON object {alias: target} under root, replaced atomically --

    def _aliases_path(self) -> Path:
        return self.root / "aliases.json"

    def aliases(self) -> dict[str, str]:
        path = self._aliases_path()
        if not path.exists():
            return {}
        data = parse_manifest(path.read_text(encoding="utf-8"), str(path))
        return {str(k): str(v) for k, v in data.items()}

    def resolve(self, name: str) -> str:
        return self.aliases().get(check_name(name), name)

    def set_alias(self, alias: str, target: str) -> None:
        check_name(alias)
        if alias == target or not self.has_collection(target):
            raise NotFound(f"alias target {target!r} does not exist", collection=target)
        with self._guard:
            table = self.aliases()
            table[alias] = target
            self.root.mkdir(parents=True, exist_ok=True)
            _write_atomic(self._aliases_path(), manifest_json(table))

    def delete_alias(self, alias: str) -> None:
        with self._guard:
            table = self.aliases()
            if table.pop(alias, None) is not None:
                _write_atomic(self._aliases_path(), manifest_json(table))

    def scroll_points(self, name: str, batch: int = 256) -> Iterator[Point]:
        held = self._get(name)
        offset: Any = None
        while True:
            request = qe.ScrollRequest(
                offset=offset, limit=check_limit(batch), filter=None, with_payload=True, with_vector=True
            )
            records, offset = held.shard.scroll(request)
            for r in records:
                yield record_point(r, held.layout)
            if offset is None:
                return

    def snapshot_to(self, name: str, dest: Path) -> None:
        """Copy a collection's files to `dest` after a flush; the caller keeps writers out."""
        held = self._get(name)
        held.shard.flush()
        shutil.copytree(self._dir(name), dest, ignore=shutil.ignore_patterns(".lock", ".*.tmp"))

    def restore_from(self, name: str, src: Path) -> None:
        """Install collection files made by snapshot_to under `name`; AlreadyExists if taken."""
        with self._guard:
            if self._dir(name).exists():
                raise AlreadyExists(f"collection {name!r} already exists", collection=name)
            self._dir(name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src, self._dir(name))

    def __enter__(self) -> "EdgeStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _to_edge_point(point: Point, layout: DenseLayout | None) -> qe.Point:
    indices, values = sparse_lists(point.sparse)
    checked = dense_array(point.dense, layout.dim if layout else None)
    vectors: dict[str, Any] = dict((layout or DenseLayout((len(checked),))).store(checked))
    vectors[SPARSE] = qe.SparseVector(indices, values)
    return qe.Point(point_id(point.id), vectors, dict(point.payload))


def _stored_layout(shard_path: Path) -> DenseLayout | None:
    """The dense layout from the shard's persisted config (None if unreadable)."""
    try:
        config = json.loads((shard_path / "edge_config.json").read_text(encoding="utf-8"))
        return DenseLayout.from_sizes({name: int(v["size"]) for name, v in config["vectors"].items()})
    except (OSError, ValueError, KeyError, TypeError, ConfigError):
        return None  # then Edge itself rejects a wrong dimension


def _unlock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temp file and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
