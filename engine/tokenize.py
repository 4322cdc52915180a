"""Bilingual lexical tokenizer for BM25: jieba for CJK runs, stemmed words for Latin.

Changing anything here changes which term ids documents get, so bump
TOKENIZER_VERSION; the collection manifest records it and refuses a mismatch.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from functools import lru_cache

TOKENIZER_VERSION = "zhiku-bm25-v1"

# CJK ideographs (incl. ext. A and compatibility) form runs handed to jieba.
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = rf"[^\W_{_CJK}]+"
_SPLIT = re.compile(rf"([{_CJK}]+)|({_WORD}(?:['’]{_WORD})*)", re.UNICODE)

# A compact English stop list: frequent function words that carry no topic.
ENGLISH_STOP = frozenset(
    """a an and are as at be been but by for from had has have he her his i if in into is it
    its of on or she that the their them then there these they this to was were what when
    where which who whom why will with would you your do does did not no can could should
    than so such about after before over under also just only very s t""".split()
)
# Chinese particles and function words that jieba emits as separate tokens.
CHINESE_STOP = frozenset(
    "的 了 是 在 和 与 及 或 也 都 就 而 着 被 把 让 给 对 从 向 于 之 其 这 那 个 们 吗 呢 吧 啊 呀 哪 什么 怎么 如何 为什么 哪些 哪个 多少 几 有 没有 一个 一种 以及 并 还 又 很".split()
)


@lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


_local = threading.local()


def _stemmer():  # type: ignore[no-untyped-def]
    # snowballstemmer keeps its working state on the instance: one per thread,
    # or concurrent searches corrupt each other's words.
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import snowballstemmer

        stemmer = _local.stemmer = snowballstemmer.stemmer("english")
    return stemmer


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


def _cjk_tokens(run: str) -> list[str]:
    # Search mode adds the sub-words of long words, so "中华人民共和国" also
    # matches a query for "共和国"; single characters stay only if not stop words.
    return [t for t in _jieba().cut_for_search(run) if t.strip() and t not in CHINESE_STOP]


def tokenize(text: str) -> list[str]:
    """Split text into BM25 terms: CJK words via jieba, Latin words lower-cased and stemmed."""
    text = unicodedata.normalize("NFKC", text)
    tokens: list[str] = []
    for match in _SPLIT.finditer(text):
        cjk, word = match.groups()
        if cjk:
            tokens.extend(_cjk_tokens(cjk))
            continue
        word = word.lower().replace("’", "'")
        word = word.split("'")[0] if word.endswith(("'s", "'t")) else word
        if word in ENGLISH_STOP:
            continue
        tokens.append(_stem(word) if word.isalpha() else word)
    return tokens
