"""Query-adaptive leg weights: the dense leg's share in convex fusion, per query.

A fixed alpha tuned on one corpus does not carry over to the next. What the
query and the two legs' score lists say at query time does:

1. Identifier-like tokens (codes, numbers): BM25 matches them exactly and the
   dense leg sees only "some code", so the dense weight is scaled by
   IDENTIFIER_SCALE.
2. A dense leg that found nothing close: when its top cosine is below the
   embedder's calibrated floor for the query's language, its ranking is a
   guess, and its weight is scaled by WEAK_DENSE_SCALE.
3. A decisive BM25 leg: when its best hit leads the second by more than
   BM25_LEAD (relative), the rare terms of the query point at one chunk, and
   the dense weight is scaled by DECISIVE_BM25_SCALE.

Every rule only lowers alpha from the configured one, so a query with none of
these features is fused exactly as before. See docs/architecture.md
("Query-adaptive fusion") for how the constants were fitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from zhiku.engine.query import QueryAnalysis

# Fitted on squad-dev and cmrc-trial (bench/fusion_fit.py), checked on the
# identifier set; see docs/architecture.md.
IDENTIFIER_SCALE = 0.5
WEAK_DENSE_SCALE = 0.5
BM25_LEAD = 0.5
DECISIVE_BM25_SCALE = 0.75


@dataclass(frozen=True, slots=True)
class LegShape:
    """The head of one leg's score list: its best and second-best scores."""

    top: float | None
    second: float | None

    @classmethod
    def of(cls, scores: Sequence[float]) -> "LegShape":
        """The shape of a leg from its scores, best first."""
        return cls(scores[0] if scores else None, scores[1] if len(scores) > 1 else None)

    @property
    def lead(self) -> float:
        """How far the best hit leads the second, relative to the best (0 when unknown)."""
        if self.top is None or self.second is None or self.top <= 0:
            return 0.0
        return (self.top - self.second) / self.top


def dense_weight(
    alpha: float,
    query: QueryAnalysis,
    dense: LegShape,
    bm25: LegShape,
    floors: Mapping[str, float],
) -> float:
    """The dense leg's weight for this query: `alpha` lowered by each rule that fires."""
    weight = alpha
    if query.identifiers:
        weight *= IDENTIFIER_SCALE
    floor = floors.get(query.language)
    if floor is not None and dense.top is not None and dense.top < floor:
        weight *= WEAK_DENSE_SCALE
    if bm25.lead > BM25_LEAD:
        weight *= DECISIVE_BM25_SCALE
    return weight
