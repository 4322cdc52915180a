"""Cross-lingual candidates: the other language's chunks for a question, by vector, dictionary and translation.

A question in one language may be answered by a chunk in the other (zh <-> en),
but BM25 only ever matches the question's own language, and a multilingual
model's vectors cluster by language, so same-language distractors win.
`other_language_pool` therefore searches the other language's chunks on their
own and returns its best candidates, which search keeps near the top:

1. the question's own vector against the other language's chunks (the
   multilingual half of the embedder: `Embedder.embed_query_across`);
2. with `retrieval.dictionary_translation` (on by default), BM25 over those
   chunks with the question's words glossed by CC-CEDICT
   (engine/dictionary.py), fused with step 1's list: convex, each list
   max-normalised, weight GLOSS_ALPHA on the vectors. A romanised Chinese
   name in an English question (`Zhang Yonghai`) is matched in the
   candidates' text by its pinyin (NAME_POOL candidates read), and those
   spelling it come first;
3. with a translator (`retrieval.translate_queries`), the question translated
   into that language is searched there as a full hybrid (BM25 + dense, fused
   as any question in that language), and the two lists are interleaved,
   translation first: search keeps the pool's best two near the top, so each
   way gets a slot. (Reciprocal-rank fusion of the two lists instead favours
   candidates both find, and a strong translated match that the vector pool
   missed loses to the vector pool's noise.)

Step 2 costs about a millisecond of glossing and one BM25 query; a question
with a romanised name also reads NAME_POOL payloads. The fusion was chosen on
the even-numbered pairs of bench/data/crosslingual.jsonl (top 3, en->zh /
zh->en; odd-numbered pairs in docs/architecture.md):

| fusion of vectors and glosses | even pairs |
|---|---|
| convex, max-normalised, alpha 0.5 (chosen) | 0.885 / 0.824 |
| convex, max-normalised, alpha 0.6 / 0.7 | 0.885 / 0.804, 0.904 / 0.784 |
| convex, min-max, alpha 0.5 | 0.865 / 0.804 |
| reciprocal rank (k 60) | 0.865 / 0.784 |
| interleaved, glosses first | 0.808 / 0.843 |

The translator is the local LLM (`LLMTranslator`), so step 3 costs one
generation per new question (cached after): off by default; the bench
reports its latency and its gain.
"""

from __future__ import annotations

import re
from itertools import zip_longest
from typing import Callable, Protocol, Sequence

from zhiku.engine.adaptive import convex_options
from zhiku.engine.bm25 import encode_query, encode_weighted_query
from zhiku.engine.dictionary import Dictionary, gloss_terms
from zhiku.engine.embedders.base import Embedder, LRU
from zhiku.engine.filters import Condition
from zhiku.engine.fusion import convex
from zhiku.engine.query import analyse, detect_language
from zhiku.engine.stores.base import VectorStore
from zhiku.engine.types import ScoredPoint

# Candidates taken from the other language's pool (each list, before fusing).
CROSS_POOL = 10
# The vector pool's weight against the glossed question's BM25 (max-normalised
# convex fusion), chosen on the even-numbered bench pairs (module docstring).
GLOSS_ALPHA = 0.5
# Candidates read for a romanised Chinese name (engine/dictionary.py) in an English question.
NAME_POOL = 30
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese"}
# Longest translation read from the model, in tokens: questions are short.
TRANSLATION_TOKENS = 64
TRANSLATIONS_CACHED = 4096


class QueryTranslator(Protocol):
    """Translates a search question into another language; None when it cannot."""

    def translate(self, text: str, target: str) -> str | None: ...


class LLMTranslator:
    """Question translation by the local chat model, greedy and cached.

    A few worked examples show the model that the reply is the translated
    question, not its answer (a 0.5B model otherwise answers). A reply not in
    the target language is dropped: searching it would only add noise.
    """

    # Worked examples per target language, asked the way the question is asked.
    EXAMPLES = {
        "zh": (
            ("Who wrote the novel War and Peace?", "谁写了小说《战争与和平》？"),
            ("What is the capital of Australia?", "澳大利亚的首都是哪里？"),
            ("When was the Eiffel Tower built?", "埃菲尔铁塔是什么时候建成的？"),
        ),
        "en": (
            ("长城大部分是哪个朝代修建的？", "Which dynasty built most of the Great Wall?"),
            ("光合作用需要哪些条件？", "What conditions does photosynthesis need?"),
            ("1969年谁第一个登上月球？", "Who was the first to walk on the Moon in 1969?"),
        ),
    }
    INSTRUCTION = {
        "zh": "把下面的英文问题翻译成中文，只输出译文：",
        "en": "Translate this Chinese question into English. Output only the translation:",
    }

    def __init__(self, generator: Callable[[], object]) -> None:
        # A callable, so the model loads on the first translation, not at startup.
        self._generator = generator
        self._cache = LRU(TRANSLATIONS_CACHED)

    def messages(self, text: str, target: str) -> list[dict[str, str]]:
        """The chat prompt: the examples as earlier turns, then the question."""
        out = [{"role": "system", "content": "You translate search questions. Never answer them."}]
        for question, translated in self.EXAMPLES[target]:
            out.append({"role": "user", "content": f"{self.INSTRUCTION[target]}\n{question}"})
            out.append({"role": "assistant", "content": translated})
        out.append({"role": "user", "content": f"{self.INSTRUCTION[target]}\n{text}"})
        return out

    def translate(self, text: str, target: str) -> str | None:
        if target not in self.EXAMPLES:
            return None
        key = f"{target}\x00{text}"
        cached = self._cache.get(key)
        if cached is not None:
            return cached or None
        generator = self._generator()
        reply = generator.complete(  # type: ignore[attr-defined]
            self.messages(text, target), max_tokens=TRANSLATION_TOKENS, temperature=0.0, stop=("\n",)
        ).strip()
        result = reply if reply and detect_language(reply) == target else ""
        self._cache.put(key, result)  # type: ignore[arg-type]
        return result or None


def other_language_pool(
    store: VectorStore,
    embedder: Embedder,
    collection: str,
    question: str,
    where: Sequence[Condition],
    target: str,
    with_payload: bool,
    alpha: float,
    tokenize: Callable[[str], list[str]],
    translator: QueryTranslator | None = None,
    dictionary: Dictionary | None = None,
    source: str = "",
) -> list[ScoredPoint]:
    """The best chunks in language `target` (filtered by `where`) for `question`, best first."""
    names = dictionary.pinyin_names(question) if dictionary is not None and target == "zh" else []
    # A romanised name is checked in the chunks' text, so look deeper for it.
    depth = NAME_POOL if names else CROSS_POOL
    across = embedder.embed_query_across(question)
    pool = store.query_dense(collection, across, depth, where, with_payload)
    if dictionary is not None:
        glossed = _glossed(store, collection, question, source, where, with_payload, tokenize, dictionary, depth)
        pool = fuse_glossed(pool, glossed, depth)
    if names:
        pool = _names_first(store, collection, pool, names)
    pool = pool[:CROSS_POOL]
    translated = translator.translate(question, target) if translator is not None else None
    if not translated:
        return pool
    hybrid = _hybrid(store, embedder, collection, translated, where, with_payload, alpha, tokenize)
    return interleave(hybrid, pool)[:CROSS_POOL]


def fuse_glossed(pool: Sequence[ScoredPoint], glossed: Sequence[ScoredPoint], limit: int) -> list[ScoredPoint]:
    """The vector pool and the glossed question's BM25 hits as one list, best first (convex, max-normalised)."""
    if not glossed:
        return list(pool)
    points = {p.id: p for p in (*glossed, *pool)}
    # A negative cosine is no evidence; left negative, max-normalising would
    # rank it below candidates that have none.
    fused = convex([(p.id, max(p.score, 0.0)) for p in pool], [(p.id, p.score) for p in glossed], limit,
                   alpha=GLOSS_ALPHA, norm="max")
    return [ScoredPoint(pid, score, points[pid].payload) for pid, score in fused]


def _glossed(
    store: VectorStore, collection: str, question: str, source: str, where: Sequence[Condition],
    with_payload: bool, tokenize: Callable[[str], list[str]], dictionary: Dictionary, limit: int,
) -> list[ScoredPoint]:
    """BM25 over the other language's chunks with the question's dictionary glosses."""
    weights = gloss_terms(dictionary.gloss_question(question, source), tokenize)
    if not weights:
        return []
    return store.query_sparse(collection, encode_weighted_query(weights), limit, where, with_payload)


def _names_first(
    store: VectorStore, collection: str, pool: Sequence[ScoredPoint], names: Sequence[re.Pattern[str]]
) -> list[ScoredPoint]:
    """The candidates whose text spells more of the question's romanised names first, else in pool order."""
    missing = [p.id for p in pool if not p.payload]
    texts = {p.id: p.payload for p in pool if p.payload}
    texts.update(store.retrieve(collection, missing) if missing else {})
    held = {p.id: sum(bool(n.search(texts.get(p.id, {}).get("text", ""))) for n in names) for p in pool}
    return sorted(pool, key=lambda p: -held[p.id])


def interleave(first: Sequence[ScoredPoint], second: Sequence[ScoredPoint]) -> list[ScoredPoint]:
    """first[0], second[0], first[1], ... without repeats: each list's best gets a slot."""
    out: dict[str, ScoredPoint] = {}
    for pair in zip_longest(first, second):
        for point in pair:
            if point is not None and point.id not in out:
                out[point.id] = point
    return list(out.values())


def _hybrid(
    store: VectorStore, embedder: Embedder, collection: str, text: str,
    where: Sequence[Condition], with_payload: bool, alpha: float, tokenize: Callable[[str], list[str]],
) -> list[ScoredPoint]:
    """A translated question searched like a question in its own language: both legs, fused."""
    q = analyse(text)
    dense = store.query_dense(collection, embedder.embed_query(q.text), CROSS_POOL, where, with_payload)
    terms = tokenize(q.text)
    bm25 = store.query_sparse(collection, encode_query(terms), CROSS_POOL, where, with_payload) if terms else []
    points = {p.id: p for p in (*dense, *bm25)}
    fused = convex([(p.id, p.score) for p in dense], [(p.id, p.score) for p in bm25], CROSS_POOL,
                   **convex_options(alpha, q))
    return [ScoredPoint(pid, score, points[pid].payload) for pid, score in fused]
