"""Small builders for store tests: deterministic points with known vectors and payloads."""

from __future__ import annotations

import math
import uuid
from typing import Any

import numpy as np

from zhiku.engine.types import Point, SparseVector

DIM = 8


def pid(n: int) -> str:
    """A stable UUID string for test point n."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"zhiku-test-point-{n}"))


def unit(axis: int, tilt: float = 0.0, dim: int = DIM) -> np.ndarray:
    """A vector along `axis`, tilted toward the next axis by `tilt` radians."""
    v = np.zeros(dim, dtype=np.float32)
    v[axis % dim] = math.cos(tilt)
    v[(axis + 1) % dim] = math.sin(tilt)
    return v


def point(
    n: int,
    dense: np.ndarray | None = None,
    terms: dict[int, float] | None = None,
    doc_id: str | None = None,
    **meta: Any,
) -> Point:
    """Point n with payload shaped like Chunk.payload(); user metadata under `meta`."""
    terms = terms if terms is not None else {1000 + n: 1.0}
    return Point(
        id=pid(n),
        dense=dense if dense is not None else unit(n),
        sparse=SparseVector(tuple(terms), tuple(terms.values())),
        payload={
            "text": f"text {n}",
            "doc_id": doc_id or f"doc-{n}",
            "chunk_id": f"doc-{n}#0",
            "chunk_index": 0,
            "content_hash": f"hash-{n}",
            "source": f"src/{n}.txt",
            "meta": dict(meta),
        },
    )


def bm25_idf(n_docs: int, doc_freq: int) -> float:
    """Qdrant's IDF modifier: ln(1 + (N - n + 0.5) / (n + 0.5))."""
    return math.log(1.0 + (n_docs - doc_freq + 0.5) / (doc_freq + 0.5))
