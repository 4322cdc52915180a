"""Search orchestration for one collection: validate, analyse, run the legs, fuse, rank, fetch.

`SearchRequest.resolve` is the one place a search's options are defaulted and
checked; `Searcher.run`:

1. reads the query (`engine/query.py`: quoted phrases, language, identifiers);
2. runs the dense and BM25 legs (overlapped in hybrid mode) and, beside
   them, for a cross-lingual search, a pool of chunks in the other language
   (`engine/crosslingual.py`: by vector, by the question's dictionary
   glosses and romanised names, and by the translated question when
   `retrieval.translate_queries` is on);
3. fuses the legs (`engine/fusion.py`), in convex fusion with a per-query dense
   weight (`engine/adaptive.py`) unless the request fixed alpha;
4. applies the ranking rules (`engine/ranking.py`): phrases, title boost, the
   optional reranker, the exact-match guarantee, the cross-lingual slot;
5. reads payloads once, for the hits it returns. Legs skip payloads unless
   the query has quoted phrases (every candidate must be checked). For
   identifiers and names the head is checked first; unless two of its
   documents already hold them or its holders already lead it, a BM25 probe
   of those terms alone names the few chunks that can, and only those are
   read (`_exact_holders`).
"""

from __future__ import annotations

import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping

from zhiku.engine import ranking
from zhiku.engine.adaptive import convex_options
from zhiku.engine.bm25 import encode_query
from zhiku.engine.crosslingual import QueryTranslator, other_language_pool
from zhiku.engine.dictionary import cedict
from zhiku.engine.embedders.base import Embedder
from zhiku.engine.errors import InvalidRequest
from zhiku.engine.filters import Condition, MatchAny, parse_filters
from zhiku.engine.fusion import FUSIONS
from zhiku.engine.llm.rerank import Reranker
from zhiku.engine.query import QueryAnalysis, analyse
from zhiku.engine.settings import RetrievalSettings
from zhiku.engine.stores.base import BatchedLegs, VectorStore
from zhiku.engine.tokenize import tokenize as current_tokenize
from zhiku.engine.types import Hit, ScoredPoint

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "bm25")
Timings = dict[str, float]
# The payload field holding a chunk's language (engine/types.py).
LANGUAGE_KEY = "language"
# Cross-lingual search: which chunk languages answer a question in each language.
OTHER_LANGUAGES = {"zh": ("en",), "en": ("zh",)}
# The ranks (from 1) by which the other language's best candidates
# (engine/crosslingual.py) must appear: a mixed collection's answer may be in
# either language, and BM25 only ever finds the question's own.
CROSS_SLOTS = (2, 3)
# How long the Searcher trusts that a collection has (or lacks) chunks in a language.
LANGUAGE_TTL_S = 30.0
# The exact-match probe, run when fewer than two documents in the head hold
# the query's identifiers and names: how many chunks a BM25 query of those
# terms alone may name, and how many are read at a time. A chunk holding every
# term outscores most holding some, so holders come first; reading stops once
# two documents hold them all (no guarantee then).
EXACT_PROBE = 32
EXACT_BATCH = 8


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """A search with every option resolved against the settings and checked."""

    query: str
    top_k: int
    mode: Mode
    conditions: tuple[Condition, ...]
    fusion: str
    alpha: float
    rrf_k: int
    prefetch: int
    adaptive: bool  # per-query alpha; False when the request fixed alpha
    title_boost: float
    cross_lingual: bool
    cross_min_share: float  # the least share of chunks the other language must hold for its pool
    translate: bool  # translate the question for the other language's pool
    dictionary: bool  # gloss the question with the bilingual dictionary for that pool
    rerank_window: int

    @classmethod
    def resolve(
        cls,
        settings: RetrievalSettings,
        query: str,
        top_k: int | None = None,
        mode: str | None = None,
        filters: Mapping[str, Any] | None = None,
        fusion: str | None = None,
        alpha: float | None = None,
    ) -> "SearchRequest":
        """Defaults from the settings; InvalidRequest for anything out of range."""
        top_k = settings.top_k if top_k is None else top_k
        mode = mode or settings.mode
        fusion = fusion or settings.fusion
        adaptive = settings.adaptive and alpha is None
        alpha = settings.alpha if alpha is None else alpha
        if not isinstance(query, str) or not query.strip():
            raise InvalidRequest("query must be a non-empty string", field="query")
        if not 1 <= top_k <= settings.max_top_k:
            raise InvalidRequest(
                f"top_k must be between 1 and {settings.max_top_k}", field="top_k", limit=settings.max_top_k
            )
        if mode not in MODES:
            raise InvalidRequest(f"mode must be one of {MODES}", field="mode")
        if fusion not in FUSIONS:
            raise InvalidRequest(f"fusion must be one of {sorted(FUSIONS)}", field="fusion")
        if not 0.0 <= alpha <= 1.0:
            raise InvalidRequest("alpha must be between 0 and 1", field="alpha")
        return cls(
            query=query,
            top_k=top_k,
            mode=mode,  # type: ignore[arg-type]
            conditions=tuple(parse_filters(filters)),
            fusion=fusion,
            alpha=alpha,
            rrf_k=settings.rrf_k,
            prefetch=settings.prefetch,
            adaptive=adaptive,
            title_boost=settings.title_boost,
            cross_lingual=settings.cross_lingual,
            cross_min_share=settings.cross_lingual_min_share,
            translate=settings.translate_queries,
            dictionary=settings.dictionary_translation,
            rerank_window=settings.rerank_window,
        )

    def fusion_options(self) -> dict[str, Any]:
        """The keyword arguments this request's fusion function takes."""
        if self.fusion == "rrf":
            return {"k": self.rrf_k}
        if self.fusion == "convex":
            return {"alpha": self.alpha}
        return {}


class Searcher:
    """Runs searches of one collection over a store and an embedder."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        collection: str,
        leg_pool: Executor,
        tokenize: Callable[[str], list[str]] = current_tokenize,
        reranker: Reranker | None = None,
        translator: QueryTranslator | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.collection = collection
        # BM25 terms as the collection's manifest says it was built.
        self.tokenize = tokenize
        # Runs the dense leg of a hybrid search beside the BM25 leg.
        self.leg_pool = leg_pool
        # A remote store takes both legs in one request: one round trip.
        self.batched = isinstance(store, BatchedLegs)
        self.reranker = reranker
        self.translator = translator
        self._languages: dict[str, tuple[float, tuple[int, int]]] = {}
        # The bilingual dictionary (engine/dictionary.py), loaded on first use.
        self.dictionary = cedict

    def run(self, request: SearchRequest) -> tuple[list[Hit], Timings]:
        """Hits best first, and per-stage timings in milliseconds."""
        r = request
        q = analyse(r.query)
        t0 = time.perf_counter()
        timings: Timings = {}
        legs, pool = self._legs(r, q, timings)
        t3 = time.perf_counter()
        if r.mode == "hybrid":
            ranked = self._fuse(r, q, legs)
        else:
            ranked = [(p.id, p.score) for p in legs[r.mode]]
        payloads = {p.id: p.payload for leg in (*legs.values(), pool) for p in leg if p.payload}
        ranked = ranking.keep_phrases(ranked, payloads, q.phrases) if q.phrases else ranked
        # Title boost and reranker see the head of the ranking, with its payloads.
        head = ranked[: max(r.top_k, r.rerank_window if self.reranker else r.top_k)]
        self._fetch(payloads, [pid for pid, _ in head])
        head = ranking.boost_titles(head, payloads, self.tokenize(q.text), self.tokenize, r.title_boost)
        if self.reranker is not None:
            head = self._rerank(q.text, head, payloads, timings)
        ranked = head + ranked[len(head) :]
        if q.exact:
            ranked = ranking.promote(ranked, self._exact_holders(r, q, payloads, [pid for pid, _ in head]))
        pool_phrases = q.phrases_for(OTHER_LANGUAGES.get(q.language, (q.language,))[0])
        across = ranking.keep_phrases([(p.id, p.score) for p in pool], payloads, pool_phrases)
        ranked = ranked[: r.top_k]
        for rank, candidate in zip(CROSS_SLOTS, across):
            ranked = _keep_slot(ranked, candidate, rank)
        timings["fusion_ms"] = (time.perf_counter() - t3) * 1000
        t4 = time.perf_counter()
        self._fetch(payloads, [pid for pid, _ in ranked])
        timings["fetch_ms"] = (time.perf_counter() - t4) * 1000
        timings["total_ms"] = (time.perf_counter() - t0) * 1000
        # A point deleted between the legs and the fetch is simply dropped.
        hits = [Hit.from_payload(payloads[pid], score) for pid, score in ranked if pid in payloads]
        return hits, timings

    def _legs(
        self, r: SearchRequest, q: QueryAnalysis, timings: Timings
    ) -> tuple[dict[str, list[ScoredPoint]], list[ScoredPoint]]:
        """The legs the mode asks for, and the other language's dense pool (maybe empty)."""
        # Phrases filter candidates, so a single-leg search with them takes a
        # full prefetch too, and reads every candidate's text.
        limit = max(r.prefetch, r.top_k) if r.mode == "hybrid" or q.phrases else r.top_k
        dense_payload = bm25_payload = bool(q.phrases)
        legs: dict[str, list[ScoredPoint]] = {"dense": [], "bm25": []}
        pool: list[ScoredPoint] = []
        t0 = time.perf_counter()

        wanted = r.cross_lingual and self.embedder.cross_lingual and r.mode != "bm25"
        others = self._other_languages(q.language, r.cross_min_share) if wanted else ()

        def cross_pool() -> None:
            nonlocal pool
            tp = time.perf_counter()
            where = (*r.conditions, MatchAny(LANGUAGE_KEY, others))
            pool = other_language_pool(
                self.store, self.embedder, self.collection, q.text, where, others[0], dense_payload,
                r.alpha, self.tokenize, self.translator if r.translate else None,
                self.dictionary() if r.dictionary else None, q.language,
            )
            timings["cross_ms"] = (time.perf_counter() - tp) * 1000

        def dense_leg() -> None:
            vector = self.embedder.embed_query(q.text)
            t1 = time.perf_counter()
            timings["embed_ms"] = (t1 - t0) * 1000
            legs["dense"] = self.store.query_dense(self.collection, vector, limit, r.conditions, dense_payload)
            timings["dense_ms"] = (time.perf_counter() - t1) * 1000

        def bm25_leg() -> None:
            t2 = time.perf_counter()
            terms = self.tokenize(q.text)
            if terms:
                legs["bm25"] = self.store.query_sparse(
                    self.collection, encode_query(terms), limit, r.conditions, bm25_payload
                )
            timings["bm25_ms"] = (time.perf_counter() - t2) * 1000

        # The other language's pool runs beside the legs: its model (the
        # multilingual half) and the engine release the GIL, so it costs the
        # question little time while a core is free.
        pooled = self.leg_pool.submit(cross_pool) if others else None
        if r.mode != "hybrid":
            (dense_leg if r.mode == "dense" else bm25_leg)()
        elif self.batched:
            self._both_legs(q, limit, r.conditions, dense_payload or bm25_payload, legs, timings, t0)
        else:
            # The legs overlap: the model and the engine release the GIL.
            pending = self.leg_pool.submit(dense_leg)
            bm25_leg()
            pending.result()
        if pooled is not None:
            pooled.result()
        return legs, pool

    def _both_legs(
        self, q: QueryAnalysis, limit: int, conditions: tuple[Condition, ...], with_payload: bool,
        legs: dict[str, list[ScoredPoint]], timings: Timings, t0: float,
    ) -> None:
        """Hybrid legs from a BatchedLegs store: embed, then one request for both."""
        vector = self.embedder.embed_query(q.text)
        t1 = time.perf_counter()
        timings["embed_ms"] = (t1 - t0) * 1000
        terms = self.tokenize(q.text)
        sparse = encode_query(terms) if terms else None
        legs["dense"], legs["bm25"] = self.store.query_legs(  # type: ignore[attr-defined]
            self.collection, vector, sparse, limit, conditions, with_payload
        )
        # Both legs ran in the same request: each took that round trip.
        timings["dense_ms"] = timings["bm25_ms"] = (time.perf_counter() - t1) * 1000

    def _fuse(self, r: SearchRequest, q: QueryAnalysis, legs: dict[str, list[ScoredPoint]]) -> ranking.Ranked:
        """Every candidate of both legs, fused, best first."""
        dense = [(p.id, p.score) for p in legs["dense"]]
        bm25 = [(p.id, p.score) for p in legs["bm25"]]
        options = r.fusion_options()
        if r.fusion == "convex" and r.adaptive:
            options = convex_options(r.alpha, q)
        return FUSIONS[r.fusion](dense, bm25, len(dense) + len(bm25), **options)

    def _rerank(
        self, query: str, head: ranking.Ranked, payloads: dict[str, dict[str, Any]], timings: Timings
    ) -> ranking.Ranked:
        t = time.perf_counter()
        known = [(pid, s) for pid, s in head if pid in payloads]
        scores = self.reranker.score(query, [payloads[pid].get("text", "") for pid, _ in known])  # type: ignore[union-attr]
        order = sorted(range(len(known)), key=lambda i: (-scores[i], i))
        timings["rerank_ms"] = (time.perf_counter() - t) * 1000
        return [(known[i][0], float(scores[i])) for i in order]

    def _exact_holders(
        self, r: SearchRequest, q: QueryAnalysis, payloads: dict[str, dict[str, Any]], head: list[str]
    ) -> list[str]:
        """The chunks holding the query's identifiers and names, if one document alone holds them; else []."""
        holders = ranking.holding(head, payloads, q.exact)
        docs = {payloads[pid].get("doc_id") for pid in holders}
        terms = self.tokenize(" ".join(q.exact))
        # Nothing more to read when two documents in the head hold them all (no
        # guarantee), or when the head's holders already lead it (nothing to
        # move). Dense-only search is semantic by request: it looks no further.
        leading = bool(holders) and holders == head[: len(holders)]
        if len(docs) > 1 or leading or not terms or r.mode == "dense":
            return holders if len(docs) == 1 else []
        probe = self.store.query_sparse(self.collection, encode_query(terms), EXACT_PROBE, r.conditions, False)
        seen = set(head)
        found = [p.id for p in probe if p.id not in seen]
        for start in range(0, len(found), EXACT_BATCH):
            batch = found[start : start + EXACT_BATCH]
            self._fetch(payloads, batch)
            more = ranking.keep_phrases([(pid, 0.0) for pid in ranking.holding(batch, payloads, q.exact)],
                                        payloads, q.phrases)
            holders += [pid for pid, _ in more]
            docs |= {payloads[pid].get("doc_id") for pid, _ in more}
            if len(docs) > 1:
                return []
        return holders

    def _fetch(self, payloads: dict[str, dict[str, Any]], ids: list[str]) -> None:
        """Read the payloads of `ids` not read yet into `payloads`."""
        missing = [pid for pid in ids if pid not in payloads]
        if missing:
            payloads.update(self.store.retrieve(self.collection, missing))

    def _other_languages(self, language: str, min_share: float) -> tuple[str, ...]:
        """The other languages of a cross-lingual search that hold at least `min_share` of the chunks."""
        out = []
        for other in OTHER_LANGUAGES.get(language, ()):
            held, total = self._share(other)
            if held > 0 and held >= min_share * total:
                out.append(other)
        return tuple(out)

    def _share(self, language: str) -> tuple[int, int]:
        """(chunks in `language`, all chunks), counted at most every LANGUAGE_TTL_S."""
        now = time.monotonic()
        seen, counts = self._languages.get(language, (-LANGUAGE_TTL_S, (0, 0)))
        if now - seen >= LANGUAGE_TTL_S:
            counts = (self.store.count(self.collection, (MatchAny(LANGUAGE_KEY, (language,)),)),
                      self.store.count(self.collection))
            self._languages[language] = (now, counts)
        return counts


def _keep_slot(ranked: ranking.Ranked, candidate: tuple[str, float], slot: int) -> ranking.Ranked:
    """Make sure `candidate` is ranked `slot` (from 1) or better, keeping the length."""
    pid = candidate[0]
    if any(p == pid for p, _ in ranked[:slot]):
        return ranked
    rest = [kv for kv in ranked if kv[0] != pid]
    score = rest[slot - 1][1] if len(rest) >= slot else candidate[1]
    return (rest[: slot - 1] + [(pid, score)] + rest[slot - 1 :])[: max(len(ranked), 1)]
