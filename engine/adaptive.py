"""Query-adaptive convex fusion: the dense leg's weight and the score normalisation, per query.

Two rules, each from a query-time feature:

1. **Identifiers** (codes, numbers; engine/query.py): the dense leg gets
   IDENTIFIER_SCALE of its usual weight, since BM25 matches such tokens
   exactly while the dense leg sees only "some code".
2. **The query's language** picks how each leg's scores are normalised.
   English questions meet the English model (MiniLM; see
   engine/embedders/bilingual.py), whose min-max convex fusion was fitted on
   squad-dev. Other questions meet the multilingual model (USE), whose
   cosines over a candidate list are compressed into a narrow band; min-max
   stretches that band to [0, 1] and so gives its noise as much say as a
   confident BM25 leg. Dividing each leg by its best score instead
   (MAX_NORM_LANGUAGES) keeps the leg's own spread: a leg that barely tells
   candidates apart barely moves them.

Rule 1 was fitted on squad-dev (300-passage sample, MiniLM) and cmrc-trial
(USE), nDCG@10 with alpha 0.4:

| rule tried                                   | squad-dev | cmrc-trial | kept |
|----------------------------------------------|-----------|------------|------|
| identifiers: dense x 0.5                     | -0.0005   | +0.0005    | yes: the identifier set needs it, neutral elsewhere |
| dense top below the calibrated floor: x 0.5  | -0.0020   | n/a        | no   |
| BM25 lead of top over second > 0.5: x 0.75   | 0.0000    | 0.0000     | no   |
| dense lead > 0.05: x 1.5                     | -0.0022   | -0.0049    | no   |

Rule 2 was fitted on cmrc-trial's even-numbered questions and checked on its
odd ones and on the 48-paragraph Chinese fixture (tests/fixtures/zh), never
fitted on; legs from the bilingual embedder, nDCG@10, alpha 0.4
(docs/architecture.md has the full table):

| Chinese fusion            | cmrc even (fit) | cmrc odd | zh fixture |
|---------------------------|-----------------|----------|------------|
| BM25 alone                | 0.9877          | 0.9826   | 0.9861     |
| convex, min-max           | 0.9908          | 0.9891   | 0.9861     |
| convex, max-normalised    | 0.9916          | 0.9908   | 0.9930     |
| RRF k=60                  | 0.9807          | 0.9711   | 0.9861     |
| dense-gap weighted alpha  | 0.9916          | 0.9899   | 0.9861     |

Alpha itself stays 0.4 for Chinese: 0.3 and 0.5 were worse on both halves.
"""

from __future__ import annotations

from typing import Any

from zhiku.engine.query import QueryAnalysis

IDENTIFIER_SCALE = 0.5
# Query languages whose convex fusion divides each leg by its best score
# (rule 2); the rest use min-max.
MAX_NORM_LANGUAGES = frozenset({"zh"})


def dense_weight(alpha: float, query: QueryAnalysis) -> float:
    """The dense leg's weight for this query: `alpha`, lowered for identifier queries."""
    return alpha * IDENTIFIER_SCALE if query.identifiers else alpha


def convex_options(alpha: float, query: QueryAnalysis) -> dict[str, Any]:
    """Keyword arguments of `fusion.convex` for this query: its dense weight and normalisation."""
    norm = "max" if query.language in MAX_NORM_LANGUAGES else "minmax"
    return {"alpha": dense_weight(alpha, query), "norm": norm}
