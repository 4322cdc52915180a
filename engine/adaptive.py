"""Query-adaptive leg weights: the dense leg's share in convex fusion, per query.

The rule: a query with identifier-like tokens (codes, numbers; see
engine/query.py) gives the dense leg IDENTIFIER_SCALE of its usual weight,
since BM25 matches such tokens exactly while the dense leg sees only "some
code". A query without them is fused exactly as configured.

Fitted on squad-dev (300-passage sample, MiniLM) and cmrc-trial (USE),
nDCG@10 with alpha 0.4 (bench/fusion_fit notes in docs/architecture.md):

| rule tried                                   | squad-dev | cmrc-trial | kept |
|----------------------------------------------|-----------|------------|------|
| identifiers: dense x 0.5                     | -0.0005   | +0.0005    | yes: the identifier set needs it, neutral elsewhere |
| dense top below the calibrated floor: x 0.5  | -0.0020   | n/a        | no   |
| BM25 lead of top over second > 0.5: x 0.75   | 0.0000    | 0.0000     | no   |
| dense lead > 0.05: x 1.5                     | -0.0022   | -0.0049    | no   |

The language is the other feature that matters, and it acts through the
embedder (engine/embedders/bilingual.py: each language meets the model that
serves it), not through alpha.
"""

from __future__ import annotations

from zhiku.engine.query import QueryAnalysis

IDENTIFIER_SCALE = 0.5


def dense_weight(alpha: float, query: QueryAnalysis) -> float:
    """The dense leg's weight for this query: `alpha`, lowered for identifier queries."""
    return alpha * IDENTIFIER_SCALE if query.identifiers else alpha
