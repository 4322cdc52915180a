"""Bilingual lexical tokenizer for BM25: jieba for CJK runs, stemmed words for Latin.

Changing anything here changes which term ids documents get, so add a
version: the collection manifest records the version a collection was built
with, and its writes, searches and `zhiku check` keep using that one (see
`tokenizer`). New collections get TOKENIZER_VERSION; `zhiku reindex` moves an
old collection to it.

Versions:
- `zhiku-bm25-v1`: jieba guessed unseen words with its HMM. In running text
  that glues an unknown name to the character after it (`周勇伟以…` is one
  token) but not in a short question (`周勇伟`, `是谁`), so the name in the
  question never matched the document.
- `zhiku-bm25-v2` (current): no guessing. An unknown word falls apart into
  dictionary words and single characters, the same way in documents and
  questions. Measured in docs/architecture.md ("Exact identifiers and names").
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from functools import lru_cache, partial
from typing import Callable

from zhiku.engine.errors import ConfigError

TOKENIZER_VERSION = "zhiku-bm25-v2"
# Each version this zhiku reads, and whether jieba guesses unseen words (HMM).
_GUESS_NEW_WORDS = {"zhiku-bm25-v1": True, "zhiku-bm25-v2": False}
TOKENIZER_VERSIONS = tuple(_GUESS_NEW_WORDS)

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


def _cjk_tokens(run: str, guess: bool) -> list[str]:
    # Search mode adds the sub-words of long words, so "中华人民共和国" also
    # matches a query for "共和国"; single characters stay only if not stop words.
    return [t for t in _jieba().cut_for_search(run, HMM=guess) if t.strip() and t not in CHINESE_STOP]


def tokenizer(version: str) -> Callable[[str], list[str]]:
    """`tokenize` as a collection built with `version` needs it; ConfigError for a version this zhiku lacks."""
    if version not in _GUESS_NEW_WORDS:
        raise ConfigError(
            f"BM25 tokenizer {version!r} is unknown to this zhiku (it reads {', '.join(TOKENIZER_VERSIONS)}); "
            "upgrade zhiku or re-ingest the collection"
        )
    return partial(tokenize, version=version)


def tokenize(text: str, version: str = TOKENIZER_VERSION) -> list[str]:
    """Split text into BM25 terms: CJK words via jieba, Latin words lower-cased and stemmed."""
    guess = _GUESS_NEW_WORDS[version]
    text = unicodedata.normalize("NFKC", text)
    tokens: list[str] = []
    for match in _SPLIT.finditer(text):
        cjk, word = match.groups()
        if cjk:
            tokens.extend(_cjk_tokens(cjk, guess))
            continue
        word = word.lower().replace("’", "'")
        word = word.split("'")[0] if word.endswith(("'s", "'t")) else word
        if word in ENGLISH_STOP:
            continue
        tokens.append(_stem(word) if word.isalpha() else word)
    return tokens
