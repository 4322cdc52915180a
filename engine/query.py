"""Query analysis: what a query's text says about how to search it (pure functions).

`analyse(query)` reads, once per search:

- the query syntax: `"quoted phrases"` must appear in every hit; the legs see
  the query with the quote marks removed;
- the language (`zh` when CJK characters are at least a fifth of the words,
  else `en`), which picks the dense leg's calibrated floor and the other
  language's candidate pool;
- identifier-like tokens: letters and digits mixed (`QX000ZR`, `ERR-404`,
  `ISO9001`) or runs of three or more digits (`4471893`, `2019`). Users who
  type them expect the document that holds them on top, whatever its wording;
- personal names: in English, two or more capitalised words in a row
  (`Lucian Ferreira`; function words such as `Who` or `Was` are not part of
  one); in Chinese, the words jieba's part-of-speech model tags as a person's
  name (`nr*`), adjacent ones joined (`赵国` + `芳`). A name is matched
  literally, like an identifier, but leaves the leg weights alone: a
  capitalised phrase such as `South America` is a topic as often as a key.

Matching (`contains_phrase`, `holds_all`) works on NFKC-normalised,
case-folded text with collapsed white space, so full-width and half-width
forms, case and line breaks do not decide a match. An identifier or a Latin
name must match whole tokens in order (`QX000ZR` is not in `QX000ZRA`, `Lucian
Ferreira` is not in `Lucian Ferreiras`); a Chinese name is a substring, since
Chinese text has no spaces to mark a word.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from zhiku.engine.tokenize import ENGLISH_STOP, _jieba

_CJK_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
# A quoted phrase: straight or curly double quotes, or CJK corner brackets.
_PHRASE = re.compile(r'"([^"]+)"|“([^”]+)”|「([^」]+)」')
# A code-like token: alphanumerics joined by - _ . / : (e.g. ERR-404, v2.1.3, A/B-12).
_TOKEN = re.compile(r"[0-9A-Za-z]+(?:[-_./:][0-9A-Za-z]+)*")
_DIGIT = re.compile(r"[0-9]")
_LETTER = re.compile(r"[A-Za-z]")
# Fewer digits than this, alone, are counts and ordinals ("top 10"), not identifiers.
MIN_NUMBER_DIGITS = 3
# Share of CJK characters among words (a CJK character counts as a word) that makes a text Chinese.
CJK_SHARE = 0.2
# An English name: capitalised words (an initial capital, then lower case) in a row.
_NAME_WORD = r"[A-Z][a-z]+(?:-[A-Z]?[a-z]+)*"
_EN_NAME = re.compile(rf"\b{_NAME_WORD}(?:\s+{_NAME_WORD})+\b")
# Fewer words than this are not a name: one capitalised word is too often a topic ("Tesla").
MIN_NAME_WORDS = 2
# Fewer CJK characters than this are not a name: one character is too often part of a word.
MIN_CJK_NAME = 2


@dataclass(frozen=True, slots=True)
class QueryAnalysis:
    """The features of one query that steer retrieval."""

    text: str  # what the legs search: the query without quote marks
    language: str  # "zh" or "en"
    identifiers: tuple[str, ...]  # normalised (case-folded) identifier-like tokens
    phrases: tuple[str, ...]  # normalised quoted phrases
    names: tuple[str, ...] = ()  # normalised personal names

    @property
    def exact(self) -> tuple[str, ...]:
        """What the exact-match guarantee looks for: identifiers and names."""
        return self.identifiers + self.names

    def phrases_for(self, language: str) -> tuple[str, ...]:
        """The phrases a chunk in `language` can hold: an English chunk never holds Chinese characters.

        So a Chinese question's quoted term (“帝国主义”) binds its own
        language's hits, not the English ones the cross-lingual pool adds.
        """
        return self.phrases if language == "zh" else tuple(p for p in self.phrases if not _CJK_CHAR.search(p))


def normalise(text: str) -> str:
    """NFKC, case-folded, white space collapsed: the form every match compares."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def detect_language(text: str) -> str:
    """`zh` when CJK characters are at least CJK_SHARE of the words, else `en`."""
    cjk = len(_CJK_CHAR.findall(text))
    latin = len(_LATIN_WORD.findall(text))
    return "zh" if cjk and cjk >= CJK_SHARE * (cjk + latin) else "en"


def is_identifier(token: str) -> bool:
    """Letters and digits mixed, or MIN_NUMBER_DIGITS or more digits."""
    digits = len(_DIGIT.findall(token))
    if not digits:
        return False
    return bool(_LETTER.search(token)) or digits >= MIN_NUMBER_DIGITS


def identifiers(text: str) -> tuple[str, ...]:
    """Identifier-like tokens of a text, normalised, in order, without repeats."""
    found = (normalise(t) for t in _TOKEN.findall(unicodedata.normalize("NFKC", text)) if is_identifier(t))
    return tuple(dict.fromkeys(found))


def names(text: str, language: str) -> tuple[str, ...]:
    """Personal names in a query, normalised, in order, without repeats (see the module docstring)."""
    found = _zh_names(text) if language == "zh" else [" ".join(_TOKEN.findall(n)) for n in _en_names(text)]
    return tuple(dict.fromkeys(normalise(n) for n in found))


def _en_names(text: str) -> list[str]:
    out = []
    for match in _EN_NAME.finditer(unicodedata.normalize("NFKC", text)):
        # Function words are capitalised too ("Who", a Title Case query): they end a name.
        run: list[str] = []
        for word in [*match.group().split(), "the"]:
            if word.lower() not in ENGLISH_STOP:
                run.append(word)
                continue
            if len(run) >= MIN_NAME_WORDS:
                out.append(" ".join(run))
            run = []
    return out


def _zh_names(text: str) -> list[str]:
    out, run = [], ""
    for word, flag in _posseg().cut(unicodedata.normalize("NFKC", text)):
        if flag.startswith("nr") and _CJK_CHAR.match(word):
            run += word
            continue
        if len(run) >= MIN_CJK_NAME:
            out.append(run)
        run = ""
    if len(run) >= MIN_CJK_NAME:
        out.append(run)
    return out


@lru_cache(maxsize=1)
def _posseg():  # type: ignore[no-untyped-def]
    import jieba.posseg

    _jieba()  # the shared, initialised tokenizer (quiet logging)
    return jieba.posseg


def phrases(query: str) -> tuple[str, ...]:
    """The quoted phrases of a query, normalised; empty quotes are ignored."""
    found = (normalise(next(g for g in m.groups() if g is not None)) for m in _PHRASE.finditer(query))
    return tuple(dict.fromkeys(p for p in found if p))


def analyse(query: str) -> QueryAnalysis:
    """Read a query's syntax and features."""
    text = _PHRASE.sub(lambda m: next(g for g in m.groups() if g is not None), query)
    language = detect_language(text)
    return QueryAnalysis(
        text=text,
        language=language,
        identifiers=identifiers(text),
        phrases=phrases(query),
        names=names(text, language),
    )


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether normalised `text` holds the normalised `phrase` (a substring, so CJK works)."""
    return phrase in normalise(text)


def holds_all(text: str, wanted: tuple[str, ...]) -> bool:
    """Whether `text` holds every identifier or name in `wanted` (whole tokens in order; CJK as a substring)."""
    folded = normalise(text)
    # A substring first: most texts fail it, and it costs far less than tokenising.
    if not all(w in folded for w in wanted):
        return False
    # Code-like tokens, space-separated and space-framed: " qx000zr " finds whole tokens only.
    tokens = f" {' '.join(_TOKEN.findall(folded))} "
    return all(_CJK_CHAR.search(w) or f" {w} " in tokens for w in wanted)
