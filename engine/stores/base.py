"""The vector-store interface: only what the engine calls, nothing more.

A store holds collections; each collection has one named dense vector
(`dense`, cosine) and one sparse vector `bm25` whose IDF Qdrant applies at
query time. Fusion of the two legs happens above the store (engine.fusion).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from zhiku.engine.filters import Condition
from zhiku.engine.types import Point, ScoredPoint, SparseVector

DENSE = "dense"
SPARSE = "bm25"
# Payload fields with a keyword index, so filters and deletes by them stay fast.
INDEXED_FIELDS = ("doc_id", "content_hash", "source")


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    """What a store needs to create a collection."""

    name: str
    dim: int


@runtime_checkable
class VectorStore(Protocol):
    """A Qdrant-backed store of points, one collection per knowledge base."""

    def list_collections(self) -> list[str]: ...
    def create_collection(self, spec: CollectionSpec) -> None: ...
    def drop_collection(self, name: str) -> None: ...
    def has_collection(self, name: str) -> bool: ...

    def read_manifest(self, name: str) -> dict[str, Any] | None: ...
    def write_manifest(self, name: str, manifest: dict[str, Any]) -> None: ...

    def upsert(self, name: str, points: Sequence[Point]) -> None: ...
    def delete_points(self, name: str, ids: Sequence[str]) -> None: ...
    def delete_where(self, name: str, conditions: Sequence[Condition]) -> None: ...

    def query_dense(
        self, name: str, vector: np.ndarray, limit: int, conditions: Sequence[Condition] = ()
    ) -> list[ScoredPoint]: ...
    def query_sparse(
        self, name: str, vector: SparseVector, limit: int, conditions: Sequence[Condition] = ()
    ) -> list[ScoredPoint]: ...

    def count(self, name: str, conditions: Sequence[Condition] = ()) -> int: ...
    def scroll(
        self, name: str, conditions: Sequence[Condition] = (), batch: int = 256
    ) -> Iterator[tuple[str, dict[str, Any]]]: ...
    def retrieve(self, name: str, ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]: ...

    def flush(self, name: str) -> None: ...
    def optimize(self, name: str) -> None: ...
    def close(self) -> None: ...
