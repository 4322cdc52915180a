"""The client backend: a Qdrant server through qdrant-client.

`settings.url` is an http(s) URL of a real server, ":memory:" for qdrant-client's
in-process local mode (what the tests use), or a folder for its on-disk local
mode. Collections have the same layout as the edge backend. The manifest rides
in the collection's own metadata (one JSON string under `zhiku_manifest`), so it
is created and dropped with the collection and needs no side collection.
"""

from __future__ import annotations

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
    dense_list,
    manifest_json,
    parse_manifest,
    point_id,
    require_filter,
    sparse_lists,
    to_filter,
)
from zhiku.engine.stores.base import DENSE, INDEXED_FIELDS, SPARSE, CollectionSpec
from zhiku.engine.types import Point, ScoredPoint, SparseVector

_MODELS = FilterModels(
    models.Filter, models.FieldCondition, models.MatchValue, models.MatchAny, models.Range
)
MANIFEST_KEY = "zhiku_manifest"
# IDF over the live points: global statistics on a server come from the sparse
# index and count deleted points until a vacuum (same choice as the edge store).
_LIVE_IDF = models.SearchParams(idf=models.IdfCorpusParams(corpus=models.Filter()))


def _connect(settings: StoreSettings) -> tuple[QdrantClient, bool]:
    """A client for `settings.url`, and whether it runs in local (in-process) mode."""
    url = settings.url
    if not url:
        raise ConfigError("store.url is required for the server backend (an http URL or ':memory:')")
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    if url.startswith(("http://", "https://")):
        return QdrantClient(url=url, api_key=api_key, timeout=int(settings.timeout_s)), False
    try:
        if url == ":memory:":
            return QdrantClient(location=":memory:"), True
        return QdrantClient(path=url), True
    except RuntimeError as exc:  # local mode's folder lock
        raise StoreLocked(f"qdrant local storage at {url} is in use by another process") from exc


@contextmanager
def _translated(name: str) -> Iterator[None]:
    """Client errors about a missing collection or bad input become domain errors."""
    try:
        yield
    except UnexpectedResponse as exc:
        if exc.status_code == 404:
            raise NotFound(f"collection {name!r} does not exist", collection=name) from exc
        if exc.status_code in (400, 422):
            raise InvalidRequest(f"qdrant rejected the request: {exc.content!r}") from exc
        raise
    except ValueError as exc:  # local mode raises ValueError("Collection x not found")
        if "not found" in str(exc):
            raise NotFound(f"collection {name!r} does not exist", collection=name) from exc
        raise


class ServerStore:
    """VectorStore on a Qdrant server (or qdrant-client's local mode)."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self.client, self._local = _connect(settings)
        self._dims: dict[str, int] = {}

    def _dim(self, name: str) -> int:
        if name not in self._dims:
            with _translated(name):
                info = self.client.get_collection(check_name(name))
            vectors = info.config.params.vectors
            self._dims[name] = vectors[DENSE].size  # type: ignore[index]
        return self._dims[name]

    # -- collections ----------------------------------------------------------

    def list_collections(self) -> list[str]:
        return sorted(c.name for c in self.client.get_collections().collections)

    def has_collection(self, name: str) -> bool:
        return self.client.collection_exists(check_name(name))

    def create_collection(self, spec: CollectionSpec) -> None:
        check_name(spec.name)
        check_dim(spec.dim)
        if self.client.collection_exists(spec.name):
            raise AlreadyExists(f"collection {spec.name!r} already exists", collection=spec.name)
        self.client.create_collection(
            spec.name,
            vectors_config={DENSE: models.VectorParams(size=spec.dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        # Local mode has no payload indexes (it warns and ignores them).
        if not self._local:
            for field in INDEXED_FIELDS:
                self.client.create_payload_index(
                    spec.name, field, models.PayloadSchemaType.KEYWORD, wait=True
                )
        self._dims[spec.name] = spec.dim

    def drop_collection(self, name: str) -> None:
        if not self.has_collection(name):
            raise NotFound(f"collection {name!r} does not exist", collection=name)
        self.client.delete_collection(name)
        self._dims.pop(name, None)

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
        dim = self._dim(name)
        batch = self.settings.upsert_batch
        for start in range(0, len(points), batch):
            structs = [_to_struct(p, dim) for p in points[start : start + batch]]
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
        return self._query(
            name, dense_list(vector, self._dim(name)), DENSE, limit, conditions, None, with_payload
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
        return [ScoredPoint(str(p.id), float(p.score), dict(p.payload or {})) for p in response.points]

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
        self._dims.clear()

    def __enter__(self) -> "ServerStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _to_struct(point: Point, dim: int) -> models.PointStruct:
    indices, values = sparse_lists(point.sparse)
    return models.PointStruct(
        id=point_id(point.id),
        vector={
            DENSE: dense_list(point.dense, dim),
            SPARSE: models.SparseVector(indices=indices, values=values),
        },
        payload=dict(point.payload),
    )
