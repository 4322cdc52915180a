"""Query analysis: what a query's text says about how to search it (pure functions).

`analyse(query)` reads, once per search:

- the query syntax: `"quoted phrases"` must appear in every hit; the legs see
  the query with the quote marks removed;
- the language (`zh` when CJK characters are at least a fifth of the words,
  else `en`), which picks the dense leg's calibrated floor and the other
  language's candidate pool;
- identifier-like tokens: letters and digits mixed (`QX000ZR`, `ERR-404`,
  `ISO9001`) or runs of three or more digits (`4471893`, `2019`). Users who
  type them expect the document that holds them on top, whatever its wording.

Matching (`contains_phrase`, `holds_all`) works on NFKC-normalised,
case-folded text with collapsed white space, so full-width and half-width
forms, case and line breaks do not decide a match.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class QueryAnalysis:
    """The features of one query that steer retrieval."""

    text: str  # what the legs search: the query without quote marks
    language: str  # "zh" or "en"
    identifiers: tuple[str, ...]  # normalised (case-folded) identifier-like tokens
    phrases: tuple[str, ...]  # normalised quoted phrases

    @property
    def needs_text(self) -> bool:
        """Whether candidates must be read (payload text) before they are ranked."""
        return bool(self.identifiers or self.phrases)


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


def phrases(query: str) -> tuple[str, ...]:
    """The quoted phrases of a query, normalised; empty quotes are ignored."""
    found = (normalise(next(g for g in m.groups() if g is not None)) for m in _PHRASE.finditer(query))
    return tuple(dict.fromkeys(p for p in found if p))


def analyse(query: str) -> QueryAnalysis:
    """Read a query's syntax and features."""
    text = _PHRASE.sub(lambda m: next(g for g in m.groups() if g is not None), query)
    return QueryAnalysis(
        text=text,
        language=detect_language(text),
        identifiers=identifiers(text),
        phrases=phrases(query),
    )


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether normalised `text` holds the normalised `phrase` (a substring, so CJK works)."""
    return phrase in normalise(text)


def identifiers_in(text: str) -> frozenset[str]:
    """Every code-like token of a text, normalised (identifier or not: a query's may be shorter)."""
    return frozenset(normalise(t) for t in _TOKEN.findall(unicodedata.normalize("NFKC", text)))


def holds_all(text: str, wanted: tuple[str, ...]) -> bool:
    """Whether `text` holds every token in `wanted` as a whole token (QX000ZR is not in QX000ZRA)."""
    return set(wanted) <= identifiers_in(text)
