"""The client backend: a Qdrant server through qdrant-client.

`settings.url` is an http(s) URL of a real server, ":memory:" for qdrant-client's
in-process local mode (what the tests use), or a folder for its on-disk local
mode. Collections have the same layout as the edge backend. The manifest rides
in the collection's own metadata (one JSON string under `zhiku_manifest`), so it
is created and dropped with the collection and needs no side collection.

Many replicas share one server: every call to a remote server is retried on
transient failures (engine/stores/retry.py), a create that loses a race to
another replica is told apart from a bad request, and a hybrid search asks for
both legs in one query batch (one round trip; fusion stays on our side, so
convex fusion sees the same raw scores as two separate calls would give).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from zhiku.engine.errors import AlreadyExists, ConfigError, InvalidRequest, NotFound, StoreLocked
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
from zhiku.engine.stores.retry import RetryingClient, RetryPolicy
from zhiku.engine.types import Point, ScoredPoint, SparseVector

_MODELS = FilterModels(
    models.Filter, models.FieldCondition, models.MatchValue, models.MatchAny, models.Range
)
MANIFEST_KEY = "zhiku_manifest"
# IDF over the live points: global statistics on a server come from the sparse
# index and count deleted points until a vacuum (same choice as the edge store).
_LIVE_IDF = models.SearchParams(idf=models.IdfCorpusParams(corpus=models.Filter()))


def _connect(settings: StoreSettings) -> tuple[Any, bool]:
    """A client for `settings.url`, and whether it runs in local (in-process) mode.

    A remote client comes wrapped in RetryingClient, so every call retries
    transient failures; local mode has no network to fail.
    """
    url = settings.url
    if not url:
        raise ConfigError("store.url is required for the server backend (an http URL or ':memory:')")
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    if url.startswith(("http://", "https://")):
        client = QdrantClient(
            url=url,
            api_key=api_key,
            timeout=math.ceil(settings.timeout_s),
            prefer_grpc=settings.prefer_grpc,
            grpc_port=settings.grpc_port,
        )
        policy = RetryPolicy(settings.retries, settings.retry_backoff_s, settings.retry_max_backoff_s)
        return RetryingClient(client, policy), False
    try:
        if url == ":memory:":
            return QdrantClient(location=":memory:"), True
        return QdrantClient(path=url), True
    except RuntimeError as exc:  # local mode's folder lock
        raise StoreLocked(f"qdrant local storage at {url} is in use by another process") from exc


# gRPC status names with the HTTP status they stand for.
_GRPC_STATUS = {"NOT_FOUND": 404, "ALREADY_EXISTS": 409, "INVALID_ARGUMENT": 400}


def _status(exc: Exception) -> int | None:
    """The HTTP status of a REST or gRPC client error, None for anything else."""
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code
    code = getattr(exc, "code", None)
    if callable(code):  # grpc.RpcError
        try:
            return _GRPC_STATUS.get(getattr(code(), "name", ""))
        except Exception:
            return None
    return None


@contextmanager
def _translated(name: str) -> Iterator[None]:
    """Client errors about a missing or existing collection, or bad input, become domain errors."""
    try:
        yield
    except ValueError as exc:  # local mode raises ValueError("Collection x not found")
        if "not found" in str(exc):
            raise NotFound(f"collection {name!r} does not exist", collection=name) from exc
        if "already exists" in str(exc):
            raise AlreadyExists(f"collection {name!r} already exists", collection=name) from exc
        raise
    except Exception as exc:
        status = _status(exc)
        if status == 404:
            raise NotFound(f"collection {name!r} does not exist", collection=name) from exc
        if status == 409:
            raise AlreadyExists(f"collection {name!r} already exists", collection=name) from exc
        if status in (400, 422):
            detail = getattr(exc, "content", None) or getattr(exc, "details", lambda: "")()
            raise InvalidRequest(f"qdrant rejected the request: {detail!r}") from exc
        raise


class ServerStore:
    """VectorStore on a Qdrant server (or qdrant-client's local mode)."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self.client, self._local = _connect(settings)
        self._layouts: dict[str, DenseLayout] = {}

    def _layout(self, name: str) -> DenseLayout:
        if name not in self._layouts:
            with _translated(name):
                info = self.client.get_collection(check_name(name))
            vectors = info.config.params.vectors
            self._layouts[name] = DenseLayout.from_sizes({k: v.size for k, v in vectors.items()})  # type: ignore[union-attr]
        return self._layouts[name]

    def _dim(self, name: str) -> int:
        return self._layout(name).dim

    # -- collections ----------------------------------------------------------

    def list_collections(self) -> list[str]:
        return sorted(c.name for c in self.client.get_collections().collections)

    def has_collection(self, name: str) -> bool:
        return self.client.collection_exists(check_name(name))

    def dense_parts(self, name: str) -> tuple[int, ...]:
        return self._layout(name).parts

    def create_collection(self, spec: CollectionSpec) -> None:
        check_name(spec.name)
        layout = DenseLayout.of(check_dim(spec.dim), spec.parts)
        # A whole vector under cosine; parts of the unit vector under dot product.
        distance = models.Distance.DOT if layout.split else models.Distance.COSINE
        if self.client.collection_exists(spec.name):
            raise AlreadyExists(f"collection {spec.name!r} already exists", collection=spec.name)
        s = self.settings
        try:
            with _translated(spec.name):
                self.client.create_collection(
                    spec.name,
                    vectors_config={
                        name: models.VectorParams(size=size, distance=distance)
                        for name, size in zip(layout.names(), layout.sizes)
                    },
                    sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                    shard_number=s.shard_number,
                    replication_factor=s.replication_factor,
                    write_consistency_factor=s.write_consistency_factor,
                )
        except AlreadyExists:
            # Another replica created it between our check and our create (or
            # our own first attempt landed before a timeout and its retry
            # found it). Its indexes may not exist yet; adding them is idempotent.
            self._index_payload(spec.name)
            raise
        self._index_payload(spec.name)
        self._layouts[spec.name] = layout

    def _index_payload(self, name: str) -> None:
        """Keyword indexes on INDEXED_FIELDS (creating an existing one is a no-op)."""
        if self._local:  # local mode has no payload indexes (it warns and ignores them)
            return
        for field in INDEXED_FIELDS:
            with _translated(name):
                self.client.create_payload_index(name, field, models.PayloadSchemaType.KEYWORD, wait=True)

    def drop_collection(self, name: str) -> None:
        if not self.has_collection(name):
            raise NotFound(f"collection {name!r} does not exist", collection=name)
        self.client.delete_collection(name)
        self._layouts.pop(name, None)

    # -- manifest -------------------------------------------------------------

    def read_manifest(self, name: str) -> dict[str, Any] | None:
        with _translated(name):
            info = self.client.get_collection(check_name(name))
        raw = (info.config.metadata or {}).get(MANIFEST_KEY)
        return parse_manifest(raw, f"collection {name!r}") if raw else None

    def write_manifest(self, name: str, manifest: dict[str, Any]) -> None:
        # A JSON string, because metadata updates merge objects key by key and a
        # removed manifest field must not linger.
        text = manifest_json(manifest)
        with _translated(name):
            self.client.update_collection(check_name(name), metadata={MANIFEST_KEY: text})

    # -- writes ---------------------------------------------------------------

    def upsert(self, name: str, points: Sequence[Point]) -> None:
        layout = self._layout(name)
        batch = self.settings.upsert_batch
        for start in range(0, len(points), batch):
            structs = [_to_struct(p, layout) for p in points[start : start + batch]]
            with _translated(name):
                self.client.upsert(name, structs, wait=True)

    def delete_points(self, name: str, ids: Sequence[str]) -> None:
        self._dim(name)  # NotFound for a missing collection, even with no ids
        if ids:
            selector = models.PointIdsList(points=[point_id(i) for i in ids])
            with _translated(name):
                self.client.delete(name, selector, wait=True)

    def delete_where(self, name: str, conditions: Sequence[Condition]) -> None:
        selector = models.FilterSelector(filter=require_filter(conditions, _MODELS))
        with _translated(name):
            self.client.delete(check_name(name), selector, wait=True)

    # -- reads ----------------------------------------------------------------

    def query_dense(
        self, name: str, vector: np.ndarray, limit: int, conditions: Sequence[Condition] = (),
        with_payload: bool = True,
    ) -> list[ScoredPoint]:
        layout = self._layout(name)
        checked = dense_array(vector, layout.dim)
        parts = layout.query_parts(checked)
        if len(parts) == 1:
            using, query = parts[0]
            return self._query(name, query, using, limit, conditions, self._dense_params(), with_payload)

        # Several parts: each part's best, scored on the whole vector (engine/stores/_layout.py).
        def read(ids: list[str]) -> list[Any]:
            with _translated(name):
                return self.client.retrieve(name, [point_id(i) for i in ids], with_payload=with_payload,
                                            with_vectors=True)

        return layout.search_parts(
            checked, parts, check_limit(limit),
            lambda using, query, depth: [
                p.id for p in self._query(name, query, using, depth, conditions, self._dense_params(), False)
            ],
            read, with_payload,
        )

    def query_sparse(
        self, name: str, vector: SparseVector, limit: int, conditions: Sequence[Condition] = (),
        with_payload: bool = True,
    ) -> list[ScoredPoint]:
        self._dim(name)
        indices, values = sparse_lists(vector)
        if not indices:
            return []
        query = models.SparseVector(indices=indices, values=values)
        return self._query(name, query, SPARSE, limit, conditions, _LIVE_IDF, with_payload)

    def _dense_params(self) -> models.SearchParams | None:
        ef = self.settings.hnsw_ef
        return models.SearchParams(hnsw_ef=ef) if ef else None

    def query_legs(
        self, name: str, dense: np.ndarray, sparse: SparseVector | None, limit: int,
        conditions: Sequence[Condition] = (), with_payload: bool = True,
    ) -> tuple[list[ScoredPoint], list[ScoredPoint]]:
        """Both legs of a hybrid search in one query batch: one round trip, raw scores kept.

        Each request is the one query_dense / query_sparse sends, so each leg
        comes back exactly as those give it, and fusion above sees the same
        inputs. Qdrant's server-side fusion (prefetch + RRF/DBSF) is not used:
        it cannot do convex fusion of normalised raw scores.
        """
        layout = self._layout(name)
        parts = layout.query_parts(dense_array(dense, layout.dim))
        if len(parts) > 1:  # no single request can score several parts
            return (self.query_dense(name, dense, limit, conditions, with_payload),
                    self.query_sparse(name, sparse, limit, conditions, with_payload) if sparse is not None else [])
        using, query = parts[0]
        filt = to_filter(conditions, _MODELS)
        legs = [
            models.QueryRequest(
                query=query, using=using, limit=check_limit(limit),
                filter=filt, params=self._dense_params(), with_payload=with_payload, with_vector=False,
            )
        ]
        indices, values = sparse_lists(sparse) if sparse is not None else ([], [])
        if indices:
            legs.append(
                models.QueryRequest(
                    query=models.SparseVector(indices=indices, values=values), using=SPARSE,
                    limit=check_limit(limit), filter=filt, params=_LIVE_IDF,
                    with_payload=with_payload, with_vector=False,
                )
            )
        with _translated(name):
            responses = self.client.query_batch_points(name, requests=legs)
        dense_hits = _scored(responses[0].points)
        return dense_hits, (_scored(responses[1].points) if indices else [])

    def _query(
        self,
        name: str,
        query: Any,
        using: str,
        limit: int,
        conditions: Sequence[Condition],
        params: models.SearchParams | None = None,
        with_payload: bool = True,
    ) -> list[ScoredPoint]:
        with _translated(name):
            response = self.client.query_points(
                name,
                query=query,
                using=using,
                limit=check_limit(limit),
                query_filter=to_filter(conditions, _MODELS),
                search_params=params,
                with_payload=with_payload,
                with_vectors=False,
            )
        return _scored(response.points)

    def count(self, name: str, conditions: Sequence[Condition] = ()) -> int:
        with _translated(name):
            result = self.client.count(
                check_name(name), count_filter=to_filter(conditions, _MODELS), exact=True
            )
        return int(result.count)

    def scroll(
        self, name: str, conditions: Sequence[Condition] = (), batch: int = 256
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        filt = to_filter(conditions, _MODELS)
        offset: Any = None
        while True:
            with _translated(name):
                records, offset = self.client.scroll(
                    check_name(name),
                    scroll_filter=filt,
                    limit=check_limit(batch),
                    offset=offset,
                    with_payload=True,
                    with_vectors=False,
                )
            for record in records:
                yield str(record.id), dict(record.payload or {})
            if offset is None:
                return

    def retrieve(self, name: str, ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        wanted = [point_id(i) for i in ids]
        with _translated(name):
            records = self.client.retrieve(
                check_name(name), wanted, with_payload=True, with_vectors=False
            )
        found = {str(r.id): dict(r.payload or {}) for r in records}
        return [(i, found[i]) for i in dict.fromkeys(wanted) if i in found]

    # -- lifecycle ------------------------------------------------------------

    def flush(self, name: str) -> None:
        """Writes use wait=True, so the server has applied them; only check the name."""
        self._dim(name)

    def optimize(self, name: str) -> None:
        """The server's own background optimizer builds indexes; nothing to trigger."""
        self._dim(name)

    def close(self) -> None:
        self.client.close()
        self._layouts.clear()

    # -- aliases: Qdrant's own, switched in one atomic alias update ----------------

    def aliases(self) -> dict[str, str]:
        return {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}

    def resolve(self, name: str) -> str:
        return self.aliases().get(check_name(name), name)

    def set_alias(self, alias: str, target: str) -> None:
        check_name(alias)
        if alias == target or target in self.aliases() or not self.has_collection(target):
            raise NotFound(f"alias target {target!r} does not exist", collection=target)
        if alias not in self.aliases() and self.has_collection(alias):
            # Qdrant keeps aliases and collections in one namespace.
            raise AlreadyExists(
                f"{alias!r} is a plain collection; an alias cannot take its name", collection=alias
            )
        ops: list[Any] = [
            models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)),
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=target, alias_name=alias)
            ),
        ]
        if alias not in self.aliases():
            ops = ops[1:]
        self.client.update_collection_aliases(change_aliases_operations=ops)

    def delete_alias(self, alias: str) -> None:
        if alias in self.aliases():
            self.client.update_collection_aliases(
                change_aliases_operations=[
                    models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
                ]
            )

    def scroll_points(self, name: str, batch: int = 256) -> Iterator[Point]:
        offset: Any = None
        while True:
            with _translated(name):
                records, offset = self.client.scroll(
                    check_name(name), limit=check_limit(batch), offset=offset,
                    with_payload=True, with_vectors=True,
                )
            for r in records:
                yield record_point(r, self._layout(name))
            if offset is None:
                return

    def create_snapshot(self, name: str) -> str:
        """Qdrant's snapshot of one collection (kept on the server); returns its name."""
        with _translated(name):
            described = self.client.create_snapshot(check_name(name), wait=True)
        if described is None:
            raise InvalidRequest(f"qdrant made no snapshot of {name!r}")
        return described.name

    def recover_snapshot(self, name: str, location: str) -> None:
        """Recover a collection from a snapshot URL or server-side file:// path."""
        with _translated(name):
            self.client.recover_snapshot(check_name(name), location, wait=True)

    def __enter__(self) -> "ServerStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _scored(points: Sequence[models.ScoredPoint]) -> list[ScoredPoint]:
    return [ScoredPoint(str(p.id), float(p.score), dict(p.payload or {})) for p in points]


def _to_struct(point: Point, layout: DenseLayout) -> models.PointStruct:
    indices, values = sparse_lists(point.sparse)
    vectors: dict[str, Any] = dict(layout.store(dense_array(point.dense, layout.dim)))
    vectors[SPARSE] = models.SparseVector(indices=indices, values=values)
    return models.PointStruct(id=point_id(point.id), vector=vectors, payload=dict(point.payload))
