"""Fusion of ranked lists from the dense and BM25 legs (pure functions).

Each leg is a list of (id, score), best first. Every function returns the
fused list of (id, score), best first, truncated to `limit`.
"""

from __future__ import annotations

import statistics
from typing import Callable, Sequence

Ranked = Sequence[tuple[str, float]]


def rrf(dense: Ranked, sparse: Ranked, limit: int, k: int = 60) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: sum of 1/(k + rank) over the legs (rank from 1)."""
    scores: dict[str, float] = {}
    for leg in (dense, sparse):
        for rank, (pid, _) in enumerate(leg, start=1):
            scores[pid] = scores.get(pid, 0.0) + 1.0 / (k + rank)
    return _top(scores, limit)


def _minmax(leg: Ranked) -> dict[str, float]:
    if not leg:
        return {}
    values = [s for _, s in leg]
    low, high = min(values), max(values)
    span = high - low
    # A single candidate (or all tied) is the best of its leg.
    return {pid: (s - low) / span if span > 0 else 1.0 for pid, s in leg}


def _maxnorm(leg: Ranked) -> dict[str, float]:
    # Scores over the leg's best: a leg whose candidates score alike (a model
    # that barely tells them apart) keeps them close instead of being
    # stretched to [0, 1] as min-max does.
    if not leg:
        return {}
    high = max(s for _, s in leg)
    return {pid: s / high if high > 0 else 1.0 for pid, s in leg}


NORMS = {"minmax": _minmax, "max": _maxnorm}


def convex(
    dense: Ranked, sparse: Ranked, limit: int, alpha: float = 0.5, norm: str = "minmax"
) -> list[tuple[str, float]]:
    """alpha * norm(dense) + (1 - alpha) * norm(bm25); missing from a leg = 0.

    `norm` is "minmax" (each leg to [0, 1]) or "max" (each score over its leg's best).
    """
    d, s = NORMS[norm](dense), NORMS[norm](sparse)
    scores = {pid: alpha * d.get(pid, 0.0) + (1.0 - alpha) * s.get(pid, 0.0) for pid in d.keys() | s.keys()}
    return _top(scores, limit)


def _three_sigma(leg: Ranked) -> dict[str, float]:
    # Distribution-based score fusion (Qdrant's DBSF): normalise to
    # [mean - 3 sd, mean + 3 sd], clipped to [0, 1].
    if not leg:
        return {}
    values = [s for _, s in leg]
    mean = statistics.fmean(values)
    sd = statistics.pstdev(values) if len(values) > 1 else 0.0
    if sd == 0:
        return {pid: 0.5 for pid, _ in leg}
    low, high = mean - 3 * sd, mean + 3 * sd
    return {pid: min(1.0, max(0.0, (s - low) / (high - low))) for pid, s in leg}


def dbsf(dense: Ranked, sparse: Ranked, limit: int) -> list[tuple[str, float]]:
    """Distribution-based score fusion: sum of 3-sigma normalised scores."""
    scores: dict[str, float] = {}
    for leg in (dense, sparse):
        for pid, s in _three_sigma(leg).items():
            scores[pid] = scores.get(pid, 0.0) + s
    return _top(scores, limit)


def _top(scores: dict[str, float], limit: int) -> list[tuple[str, float]]:
    # Ties break by id so results are reproducible across runs.
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


Fuser = Callable[..., list[tuple[str, float]]]
FUSIONS: dict[str, Fuser] = {"rrf": rrf, "convex": convex, "dbsf": dbsf}
