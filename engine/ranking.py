"""Rules applied to a fused ranking before it is cut to top_k (pure functions).

Each takes the ranking as [(id, score)] best first plus what it needs of the
candidates' payloads, and returns a new ranking:

1. `keep_phrases`: a query's quoted phrases must all appear in a hit's text.
2. `boost_titles`: a hit whose title holds the query's terms gains a share of
   its score (TITLE_BOOST per all terms matched), so the document about the
   thing asked for beats one that mentions it.
3. `exact_holders` + `promote`: when exactly one document among the
   candidates holds every identifier-like token and name of the query, its
   chunks holding them go first. The guarantee runs last, after any
   reranker, so nothing can undo it. The search takes the candidates from
   the head and a BM25 probe of those terms alone (engine/search.py), so only
   chunks that can hold them are read.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from zhiku.engine.query import contains_phrase, holds_all

Ranked = list[tuple[str, float]]
Payloads = Mapping[str, Mapping[str, Any]]

# Relative score gain of a hit whose title holds every query term (half the
# terms: half the gain). Small enough to reorder close calls only.
TITLE_BOOST = 0.1


def keep_phrases(ranked: Sequence[tuple[str, float]], payloads: Payloads, phrases: Sequence[str]) -> Ranked:
    """The hits whose text contains every phrase (normalised); unknown ids are dropped."""
    if not phrases:
        return list(ranked)
    return [
        (pid, score)
        for pid, score in ranked
        if pid in payloads and all(contains_phrase(_text(payloads[pid]), p) for p in phrases)
    ]


def boost_titles(
    ranked: Sequence[tuple[str, float]],
    payloads: Payloads,
    query_terms: Sequence[str],
    tokenize: Callable[[str], list[str]],
    boost: float = TITLE_BOOST,
) -> Ranked:
    """Scores times (1 + boost * share of query terms in the title), re-sorted (stable)."""
    wanted = set(query_terms)
    if not wanted or boost == 0:
        return list(ranked)
    out = []
    for pid, score in ranked:
        title = str(payloads.get(pid, {}).get("title") or "")
        share = len(wanted & set(tokenize(title))) / len(wanted) if title else 0.0
        out.append((pid, score * (1.0 + boost * share)))
    return sorted(out, key=lambda kv: -kv[1])


def exact_holders(candidates: Sequence[str], payloads: Payloads, wanted: Sequence[str]) -> list[str]:
    """The candidates holding every identifier and name, if they all belong to one document; else []."""
    holders = holding(candidates, payloads, wanted) if wanted else []
    return holders if len({payloads[pid].get("doc_id") for pid in holders}) == 1 else []


def holding(candidates: Sequence[str], payloads: Payloads, wanted: Sequence[str]) -> list[str]:
    """The candidates (read ones only) whose title or text holds every identifier and name."""
    return [pid for pid in candidates if pid in payloads and holds_all(_text(payloads[pid]), tuple(wanted))]


def promote(ranked: Sequence[tuple[str, float]], holders: Sequence[str]) -> Ranked:
    """`holders` first (those ranked keep their order and score; others take the top score), then the rest."""
    if not holders:
        return list(ranked)
    first, ranked_ids = set(holders), {pid for pid, _ in ranked}
    top = ranked[0][1] if ranked else 0.0
    return (
        [kv for kv in ranked if kv[0] in first]
        + [(pid, top) for pid in holders if pid not in ranked_ids]
        + [kv for kv in ranked if kv[0] not in first]
    )


def _text(payload: Mapping[str, Any]) -> str:
    # The title is indexed with the chunk (both legs read it), so it counts here too.
    title = payload.get("title") or ""
    return f"{title}\n{payload.get('text', '')}" if title else str(payload.get("text", ""))
