"""The vector-store interface: only what the engine calls, nothing more.

A store holds collections; each collection has one dense vector (cosine; stored
whole as `dense`, or in named parts for an embedder made of parts:
engine/stores/_layout.py) and one sparse vector `bm25` whose IDF Qdrant applies
at query time. Fusion of the two legs happens above the store (engine.fusion).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from zhiku.engine.filters import Condition
from zhiku.engine.types import Point, ScoredPoint, SparseVector

DENSE = "dense"
SPARSE = "bm25"
# Payload fields with a keyword index, so filters and deletes by them stay fast.
# `language`: the cross-lingual pool filters by it on every search of a mixed collection.
INDEXED_FIELDS = ("doc_id", "content_hash", "source", "language")


# A re-index writes `<name>.v<N>` and points the alias `<name>` at it.
_VERSION = re.compile(r"^(?P<alias>.+)\.v(?P<n>[0-9]+)$")


def version_name(alias: str, n: int) -> str:
    """The physical collection holding version n of the collection users call `alias`."""
    return f"{alias}.v{n}"


def version_of(physical: str, alias: str) -> int | None:
    """n when `physical` is version n of `alias`, else None."""
    m = _VERSION.match(physical)
    return int(m["n"]) if m and m["alias"] == alias else None


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    """What a store needs to create a collection."""

    name: str
    dim: int
    # Sizes of the parts the dense vector is stored in (their sum is dim); () = whole.
    parts: tuple[int, ...] = ()


@runtime_checkable
class VectorStore(Protocol):
    """A Qdrant-backed store of points, one collection per knowledge base.

    Every backend passes tests/test_store_conformance.py. Shared rules: collection
    names are 1-64 of letters, digits, `-`, `_`, `.` (else InvalidRequest); any
    operation on a missing collection raises NotFound; point ids are UUID strings
    and come back in canonical form; scores are floats, payloads plain dicts.
    """

    def list_collections(self) -> list[str]:
        """Names of all collections, sorted."""
        ...

    def create_collection(self, spec: CollectionSpec) -> None:
        """Create an empty collection; AlreadyExists if the name is taken."""
        ...

    def drop_collection(self, name: str) -> None:
        """Delete a collection with its points and manifest."""
        ...

    def has_collection(self, name: str) -> bool: ...

    def dense_parts(self, name: str) -> tuple[int, ...]:
        """The sizes of the parts a collection stores its dense vector in; () when whole."""
        ...

    def read_manifest(self, name: str) -> dict[str, Any] | None:
        """The manifest last written, or None if none was."""
        ...

    def write_manifest(self, name: str, manifest: dict[str, Any]) -> None:
        """Replace the manifest (a JSON object) as a whole."""
        ...

    def upsert(self, name: str, points: Sequence[Point]) -> None:
        """Insert or wholly replace points, in batches of settings.upsert_batch."""
        ...

    def delete_points(self, name: str, ids: Sequence[str]) -> None:
        """Delete points by id; unknown ids are ignored."""
        ...

    def delete_where(self, name: str, conditions: Sequence[Condition]) -> None:
        """Delete the points matching all conditions; InvalidRequest if there are none."""
        ...

    def query_dense(
        self, name: str, vector: np.ndarray, limit: int, conditions: Sequence[Condition] = (),
        with_payload: bool = True,
    ) -> list[ScoredPoint]:
        """Nearest points by cosine similarity, best first (payloads empty unless with_payload)."""
        ...

    def query_sparse(
        self, name: str, vector: SparseVector, limit: int, conditions: Sequence[Condition] = (),
        with_payload: bool = True,
    ) -> list[ScoredPoint]:
        """Points sharing terms with `vector`, scored by sum(query weight * IDF * stored weight)."""
        ...

    def count(self, name: str, conditions: Sequence[Condition] = ()) -> int: ...
    def scroll(
        self, name: str, conditions: Sequence[Condition] = (), batch: int = 256
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every matching (id, payload), fetched `batch` at a time."""
        ...

    def retrieve(self, name: str, ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        """(id, payload) for the ids that exist, in the order asked."""
        ...

    def flush(self, name: str) -> None:
        """Make every write so far durable."""
        ...

    def optimize(self, name: str) -> None:
        """Build the HNSW index now (edge defers it to here; a server builds it in the background)."""
        ...

    def close(self) -> None:
        """Flush and release everything (files, locks, connections)."""
        ...

    # -- aliases: a name users see standing for a versioned physical collection --

    def resolve(self, name: str) -> str:
        """The physical collection `name` stands for: its alias target, else itself."""
        ...

    def aliases(self) -> dict[str, str]:
        """Every alias with its target collection."""
        ...

    def set_alias(self, alias: str, target: str) -> None:
        """Point `alias` at the existing collection `target` in one atomic step."""
        ...

    def delete_alias(self, alias: str) -> None:
        """Remove an alias (its target stays); unknown aliases are ignored."""
        ...

    def scroll_points(self, name: str, batch: int = 256) -> Iterator[Point]:
        """Every point with its stored vectors, for copying a collection without re-embedding."""
        ...


@runtime_checkable
class BatchedLegs(Protocol):
    """Optional: a store that answers both legs of a hybrid search in one request.

    A remote server implements it (one round trip instead of two); each leg
    must come back exactly as query_dense / query_sparse would return it.
    """

    def query_legs(
        self, name: str, dense: np.ndarray, sparse: SparseVector | None, limit: int,
        conditions: Sequence[Condition] = (), with_payload: bool = True,
    ) -> tuple[list[ScoredPoint], list[ScoredPoint]]:
        """(dense hits, BM25 hits); no BM25 hits when `sparse` is None or empty."""
        ...
