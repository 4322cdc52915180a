"""Rules applied to a fused ranking before it is cut to top_k (pure functions).

Each takes the ranking as [(id, score)] best first plus what it needs of the
candidates' payloads, and returns a new ranking:

1. `keep_phrases`: a query's quoted phrases must all appear in a hit's text.
2. `boost_titles`: a hit whose title holds the query's terms gains a share of
   its score (TITLE_BOOST per all terms matched), so the document about the
   thing asked for beats one that mentions it.
3. `promote_exact`: when exactly one document among the candidates holds every
   identifier-like token of the query, its chunks holding them go first. The
   guarantee runs last, after any reranker, so nothing can undo it.
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


def promote_exact(ranked: Sequence[tuple[str, float]], payloads: Payloads, identifiers: Sequence[str]) -> Ranked:
    """If one document alone holds every identifier, its matching chunks move to the front."""
    if not identifiers:
        return list(ranked)
    wanted = tuple(identifiers)
    holders = [pid for pid, _ in ranked if pid in payloads and holds_all(_text(payloads[pid]), wanted)]
    docs = {payloads[pid].get("doc_id") for pid in holders}
    if len(docs) != 1:
        return list(ranked)
    first = set(holders)
    return [kv for kv in ranked if kv[0] in first] + [kv for kv in ranked if kv[0] not in first]


def _text(payload: Mapping[str, Any]) -> str:
    # The title is indexed with the chunk (both legs read it), so it counts here too.
    title = payload.get("title") or ""
    return f"{title}\n{payload.get('text', '')}" if title else str(payload.get("text", ""))
