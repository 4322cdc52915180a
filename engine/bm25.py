"""BM25 as Qdrant sparse vectors: term-frequency saturation here, IDF in Qdrant.

A document term weight is tf*(k1+1) / (tf + k1*(1 - b + b*dl/avgdl)); the
query vector holds each term's count; Qdrant's IDF modifier multiplies by
ln(1 + (N - n + 0.5)/(n + 0.5)) at query time, which makes the dot product
exactly Okapi BM25 with that IDF.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from zhiku.engine.types import SparseVector


def term_id(term: str) -> int:
    """A stable 32-bit id for a term (CRC-32 of its UTF-8 bytes)."""
    return zlib.crc32(term.encode("utf-8"))


def _sparse(weights: dict[int, float]) -> SparseVector:
    ids = sorted(weights)
    return SparseVector(indices=tuple(ids), values=tuple(weights[i] for i in ids))


def _id_counts(tokens: Iterable[str]) -> Counter[int]:
    # Two terms hashing to one id simply add up, as one term would.
    return Counter(term_id(t) for t in tokens)


def encode_document(tokens: Sequence[str], k1: float, b: float, avgdl: float) -> SparseVector:
    """The BM25 document vector: saturated, length-normalised term frequencies."""
    if not tokens:
        return SparseVector((), ())
    norm = k1 * (1.0 - b + b * len(tokens) / max(avgdl, 1e-9))
    return _sparse({tid: tf * (k1 + 1.0) / (tf + norm) for tid, tf in _id_counts(tokens).items()})


def encode_query(tokens: Sequence[str]) -> SparseVector:
    """The BM25 query vector: each term's count (IDF is applied by the store)."""
    return _sparse({tid: float(n) for tid, n in _id_counts(tokens).items()})


def encode_weighted_query(weights: Mapping[str, float]) -> SparseVector:
    """A BM25 query vector with a weight per term instead of its count (IDF is applied by the store)."""
    ids: dict[int, float] = {}
    for term, weight in weights.items():
        ids[term_id(term)] = ids.get(term_id(term), 0.0) + weight
    return _sparse(ids)


def idf(n_docs: int, doc_freq: int) -> float:
    """The IDF Qdrant's modifier uses: ln(1 + (N - n + 0.5) / (n + 0.5))."""
    import math

    return math.log(1.0 + (n_docs - doc_freq + 0.5) / (doc_freq + 0.5))


@dataclass(slots=True)
class LengthStats:
    """Running document-length statistics that set avgdl for new documents.

    avgdl is fixed for a vector once written; as a collection grows the mean
    drifts and older vectors keep the avgdl of their time. The first batch is
    exact, and the drift of a mean over many documents is small.
    """

    docs: int = 0
    total_len: int = 0

    @property
    def avgdl(self) -> float:
        return self.total_len / self.docs if self.docs else 0.0

    def add(self, lengths: Iterable[int]) -> None:
        for n in lengths:
            self.docs += 1
            self.total_len += n
