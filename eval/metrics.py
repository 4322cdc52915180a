"""Ranking metrics as small pure functions, with trec_eval's definitions.

`ranked` is a list of document ids, best first, already deduplicated;
`qrels` maps document id to graded relevance (> 0 means relevant). Every
function matches pytrec_eval's measure of the same name to 1e-6 (see
tests/test_eval_metrics.py): ndcg_cut_k, recall_k, recip_rank on a run cut at
k, and map_cut_k.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from statistics import fmean

Qrels = Mapping[str, int]


def _relevant(qrels: Qrels) -> set[str]:
    return {doc for doc, rel in qrels.items() if rel > 0}


def ndcg_at_k(ranked: Sequence[str], qrels: Qrels, k: int) -> float:
    """nDCG@k with linear gains and log2 discounts (trec_eval ndcg_cut)."""
    dcg = sum(
        max(qrels.get(doc, 0), 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k])
    )
    ideal = sorted((rel for rel in qrels.values() if rel > 0), reverse=True)[:k]
    idcg = sum(rel / math.log2(rank + 2) for rank, rel in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], qrels: Qrels, k: int) -> float:
    """Share of the relevant documents found in the first k."""
    relevant = _relevant(qrels)
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[str], qrels: Qrels, k: int) -> float:
    """Reciprocal rank of the first relevant document within the first k, else 0."""
    relevant = _relevant(qrels)
    for rank, doc in enumerate(ranked[:k]):
        if doc in relevant:
            return 1.0 / (rank + 1)
    return 0.0


def map_at_k(ranked: Sequence[str], qrels: Qrels, k: int) -> float:
    """Average precision cut at k, divided by all relevant documents (trec_eval map_cut)."""
    relevant = _relevant(qrels)
    if not relevant:
        return 0.0
    found, total = 0, 0.0
    for rank, doc in enumerate(ranked[:k]):
        if doc in relevant:
            found += 1
            total += found / (rank + 1)
    return total / len(relevant)


METRICS = {"ndcg": ndcg_at_k, "recall": recall_at_k, "mrr": mrr_at_k, "map": map_at_k}


def dedupe(doc_ids: Iterable[str]) -> list[str]:
    """Keep each document at its best (first) rank; chunks of one document collapse."""
    seen: dict[str, None] = {}
    for doc in doc_ids:
        seen.setdefault(doc, None)
    return list(seen)


def score_query(ranked: Sequence[str], qrels: Qrels, ks: Sequence[int]) -> dict[str, float]:
    """Every metric at every cut-off for one query, keyed like `ndcg@10`."""
    return {f"{name}@{k}": fn(ranked, qrels, k) for name, fn in METRICS.items() for k in ks}


def evaluate_run(
    run: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Qrels],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Mean of every metric over the judged queries; a judged query missing from the run scores 0."""
    judged = [qid for qid, rels in qrels.items() if _relevant(rels)]
    if not judged:
        return {}
    per_query = [score_query(run.get(qid, []), qrels[qid], ks) for qid in judged]
    return {key: fmean(scores[key] for scores in per_query) for key in per_query[0]}
