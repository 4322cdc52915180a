"""How a collection stores its dense vector: whole, or in named parts.

A collection holds one dense vector per point. Most collections store it
whole, as the named vector `dense` under cosine distance. A collection made
for an embedder that declares `dense_parts` (the bilingual embedder: its
English and multilingual halves side by side) stores each part as its own
named vector, `dense.0`, `dense.1`, …, under dot-product distance, each part
cut from the unit-length whole. The point of it: a query vector that is zero
outside one part (every bilingual query: engine/embedders/bilingual.py)
searches that part's index only, a 384-dimensional one instead of 896, and
gets exactly the score cosine distance gives the whole vector:

    cos(q, p) = (q / |q|) . (p / |p|) = sum over parts of (q_i / |q|) . (p_i / |p|)

and every term but one is zero. A query touching several parts (a stored
point's own vector, in backup verification) is answered by searching each
part it touches, then scoring the union of their candidates on the whole
vector: exact scores, with recall as good as each part's own search.

The layout is read from the collection's own config (the vector names), so
collections made before parts existed keep their whole `dense` vector and
work as they did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from zhiku.engine.errors import ConfigError, InvalidRequest
from zhiku.engine.stores.base import DENSE
from zhiku.engine.types import ScoredPoint

PART_PREFIX = f"{DENSE}."
# A multi-part query searches each part this many times deeper than its limit,
# so the union holds the whole vector's best candidates.
MULTI_PART_DEPTH = 4

# search(vector name, part query, depth) -> candidate ids, best first.
PartSearch = Callable[[str, list[float], int], Iterable[str]]
# read(ids) -> stored records with `.id`, `.vector` (named vectors) and `.payload`.
ReadVectors = Callable[[list[str]], Iterable[Any]]


@dataclass(frozen=True, slots=True)
class DenseLayout:
    """The sizes of a collection's dense parts; one size means the whole vector as `dense`."""

    sizes: tuple[int, ...]
    # Derived once: every query and write uses them.
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _bounds: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        split = len(self.sizes) > 1
        names = tuple(f"{PART_PREFIX}{i}" for i in range(len(self.sizes))) if split else (DENSE,)
        edges = (0, *accumulate(self.sizes))
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_bounds", tuple(zip(edges[:-1], edges[1:])))

    @classmethod
    def of(cls, dim: int, parts: Sequence[int] = ()) -> "DenseLayout":
        """The layout for a new collection of `dim`, split into `parts` when given."""
        parts = tuple(int(p) for p in parts)
        if len(parts) > 1:
            if sum(parts) != dim or min(parts) < 1:
                raise InvalidRequest(f"dense parts {parts} do not add up to the dimension {dim}")
            return cls(parts)
        return cls((dim,))

    @classmethod
    def from_sizes(cls, vectors: Mapping[str, int]) -> "DenseLayout":
        """The layout a stored config describes: {vector name: size}."""
        if DENSE in vectors:
            return cls((int(vectors[DENSE]),))
        sizes = []
        while f"{PART_PREFIX}{len(sizes)}" in vectors:
            sizes.append(int(vectors[f"{PART_PREFIX}{len(sizes)}"]))
        if not sizes:
            raise ConfigError(f"collection has no dense vector (vectors: {sorted(vectors)})")
        return cls(tuple(sizes))

    @property
    def dim(self) -> int:
        return sum(self.sizes)

    @property
    def split(self) -> bool:
        """True when the vector is stored in parts."""
        return len(self.sizes) > 1

    @property
    def parts(self) -> tuple[int, ...]:
        """The part sizes, () for a whole vector (as CollectionSpec and embedders say it)."""
        return self.sizes if self.split else ()

    def names(self) -> tuple[str, ...]:
        return self._names

    def store(self, vector: np.ndarray) -> dict[str, list[float]]:
        """The named vectors to store for a checked dense vector (`dense_array`)."""
        if not self.split:
            return {DENSE: vector.tolist()}
        arr = _unit(vector)
        return {name: arr[a:b].tolist() for name, (a, b) in zip(self._names, self._bounds)}

    def join(self, vectors: Mapping[str, Sequence[float]]) -> np.ndarray:
        """A stored point's whole dense vector from its named vectors."""
        return np.concatenate([np.asarray(vectors[name], dtype=np.float32) for name in self._names])

    def query_parts(self, vector: np.ndarray) -> list[tuple[str, list[float]]]:
        """(vector name, query) for each part a checked query vector (`dense_array`) touches.

        A whole layout has one, the vector as given (cosine normalises it).
        Parts get the slices of the unit-length query, so a part's dot product
        is that part's share of the whole cosine. Only the touched slices are
        converted to lists (a query is on the hot path).
        """
        if not self.split:
            return [(DENSE, vector.tolist())]
        arr = _unit(vector)
        out = [(name, arr[a:b].tolist()) for name, (a, b) in zip(self._names, self._bounds) if arr[a:b].any()]
        return out or [(self._names[0], arr[: self.sizes[0]].tolist())]

    def search_parts(
        self, query: np.ndarray, parts: Sequence[tuple[str, list[float]]], limit: int,
        search: PartSearch, read: ReadVectors, with_payload: bool,
    ) -> list[ScoredPoint]:
        """A query touching several parts: each part searched `MULTI_PART_DEPTH` times
        deeper than `limit`, the union scored by exact cosine on the whole vector."""
        depth = limit * MULTI_PART_DEPTH
        ids = {pid for name, part in parts for pid in search(name, part, depth)}
        stored = {str(r.id): r for r in read(sorted(ids))}
        ranked = self.rescore(query, {pid: self.join(r.vector) for pid, r in stored.items()}, limit)
        return [ScoredPoint(pid, score, dict(stored[pid].payload or {}) if with_payload else {})
                for pid, score in ranked]

    def rescore(self, query: Sequence[float], candidates: Mapping[str, np.ndarray], limit: int) -> list[tuple[str, float]]:
        """Candidates (id -> whole stored vector) by exact cosine to `query`, best first."""
        q = _unit(np.asarray(query, dtype=np.float32))
        scored = [(pid, float(_unit(v) @ q)) for pid, v in candidates.items()]
        scored.sort(key=lambda kv: (-kv[1], kv[0]))
        return scored[:limit]


def _unit(arr: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(arr))
    return arr / norm if norm > 0 else arr
