"""BM25 sparse encoding and the bilingual tokenizer."""

from __future__ import annotations

import math
import sys

import pytest
from hypothesis import given, strategies as st

from zhiku.engine.bm25 import LengthStats, encode_document, encode_query, encode_weighted_query, idf, term_id
from zhiku.engine.tokenize import tokenize

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a quick brown dog outpaces a quick red fox",
    "lazy cats sleep all day long in the sun",
    "foxes and dogs are both canines but cats are felines",
    "the sun rises in the east and sets in the west every day",
]


def reference_bm25(corpus_tokens: list[list[str]], query: list[str], k1: float, b: float) -> list[float]:
    """Textbook Okapi BM25 with Qdrant's IDF, computed independently of zhiku.engine.bm25."""
    n = len(corpus_tokens)
    avgdl = sum(len(d) for d in corpus_tokens) / n
    scores = []
    for doc in corpus_tokens:
        score = 0.0
        for term in query:
            df = sum(1 for d in corpus_tokens if term in d)
            if df == 0:
                continue
            tf = doc.count(term)
            term_idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            score += term_idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / avgdl))
        scores.append(score)
    return scores


def sparse_score(doc_vec, query_vec, df_by_id: dict[int, int], n: int) -> float:  # type: ignore[no-untyped-def]
    doc = dict(zip(doc_vec.indices, doc_vec.values))
    return sum(
        idf(n, df_by_id[i]) * w * doc[i] for i, w in zip(query_vec.indices, query_vec.values) if i in doc
    )


@pytest.mark.parametrize("query", ["quick fox", "lazy sun day", "cats cats dogs", "nothing matches here"])
def test_sparse_dot_product_equals_reference_bm25(query: str) -> None:
    toks = [tokenize(d) for d in CORPUS]
    stats = LengthStats()
    stats.add(len(t) for t in toks)
    docs = [encode_document(t, 1.2, 0.75, stats.avgdl) for t in toks]
    df: dict[int, int] = {}
    for t in toks:
        for tid in {term_id(x) for x in t}:
            df[tid] = df.get(tid, 0) + 1
    q = tokenize(query)
    got = [sparse_score(d, encode_query(q), df, len(CORPUS)) for d in docs]
    want = reference_bm25(toks, q, 1.2, 0.75)
    assert got == pytest.approx(want, abs=1e-9)


def test_term_ids_are_stable_32_bit() -> None:
    # Pinned values: changing the hash silently breaks every existing index.
    assert term_id("fox") == 262201574  # zlib.crc32(b"fox")
    assert term_id("北京") == term_id("北京")
    assert all(0 <= term_id(t) < 2**32 for t in ["a", "中文", "x" * 1000])


def test_document_vector_is_sorted_and_saturates() -> None:
    vec = encode_document(["a"] * 50 + ["b"], k1=1.2, b=0.0, avgdl=10)
    assert list(vec.indices) == sorted(vec.indices)
    weights = dict(zip(vec.indices, vec.values))
    assert weights[term_id("a")] < 1.2 + 1  # tf saturation bound k1 + 1
    assert weights[term_id("a")] > weights[term_id("b")]


def test_empty_inputs() -> None:
    assert encode_document([], 1.2, 0.75, 10).indices == ()
    assert encode_query([]).indices == ()
    assert tokenize("") == [] and tokenize("the of and") == []


def test_english_tokens_are_lowercased_stemmed_without_stop_words() -> None:
    assert tokenize("The Running Foxes' DOGS") == ["run", "fox", "dog"]


def test_chinese_uses_jieba_search_mode_and_keeps_numbers() -> None:
    toks = tokenize("中华人民共和国成立于1949年，首都是北京。")
    assert {"中华人民共和国", "共和国", "北京", "1949"} <= set(toks)
    assert "的" not in tokenize("我的书") and "是" not in toks


def test_mixed_script_query() -> None:
    toks = tokenize("Python 3.11的性能如何")
    assert "python" in toks and "性能" in toks


@given(st.text(max_size=200))
def test_tokenize_never_fails_and_yields_nonempty_terms(text: str) -> None:
    assert all(t and not t.isspace() for t in tokenize(text))


def test_tokenize_is_thread_safe() -> None:
    # Regression: a shared snowball stemmer raised IndexError under concurrent searches.
    from concurrent.futures import ThreadPoolExecutor

    from zhiku.engine import tokenize as module

    import itertools

    # Distinct alphabetic words (digits would skip the stemmer).
    suffixes = ["".join(p) for p in itertools.product("bcdfgh", repeat=4)]
    texts = [
        " ".join(f"generaliz{s}ations national{s}ities" for s in suffixes[t::16]) for t in range(16)
    ]
    expected = [tokenize(t) for t in texts]
    module._stem.cache_clear()  # make every thread run the stemmer itself
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, as a loaded server does
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(tokenize, texts))
    finally:
        sys.setswitchinterval(interval)
    assert results == expected


def test_a_weighted_query_sums_the_weights_of_one_term() -> None:
    vector = encode_weighted_query({"glacier": 1.0, "form": 0.5})
    assert dict(zip(vector.indices, vector.values)) == {term_id("glacier"): 1.0, term_id("form"): 0.5}
    assert list(vector.indices) == sorted(vector.indices)
