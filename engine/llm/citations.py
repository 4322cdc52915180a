"""Pure functions for inline [n] citations: find, validate, verify support, snippet.

Attribution rule (what `attribute` does, in order):
1. markers naming a source that does not exist are removed from the text;
2. with `relevance` (how well each source matches the question), a source
   below `min_relevance` times the best source's relevance cannot be cited:
   an answer drawn from a passage that does not match the question is a
   misreading, not an answer;
3. each source's *support* is the share of the answer's content words (those
   not already in the question) that occur in it;
4. a cited source is kept when it can be cited, its support is at least
   `min_support` and within `ratio` of the best citable source's; weaker
   citations are dropped;
5. if nothing cited survives (or nothing was cited) and the best-supported
   citable source reaches `min_support`, the answer is attributed to it;
6. otherwise, if the answer is supported only by sources that cannot be
   cited, or the model cited only such sources, the answer is
   `misattributed` (the caller refuses it); else the valid citations are
   kept as the model wrote them and the answer is marked ungrounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MARKER = re.compile(r"\s?[\[【]\s*(\d+(?:\s*[,，、;]\s*\d+)*)\s*[\]】]")
_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[a-z0-9]+(?:'[a-z]+)?")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[^\u3400-\u9fff\uf900-\ufaff]+")
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])")
# What ends a piece that is not a sentence's end: an initial (one capital
# letter) or a common abbreviation, then its full stop.
_ABBREVIATION = re.compile(
    r"(?:(?<![\w.])[A-Z]|(?<![\w.])(?:Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|Mt|Gen|Col|Lt|Capt|Gov|Sen|Rep|Rev|"
    r"vs|etc|No|Nos|Vol|Fig|Inc|Ltd|Co|Corp|approx|e\.g|i\.e|a\.m|p\.m|U\.S|U\.K))\.$"
)
STOPWORDS = frozenset(
    "a an the of to in on at for by with from and or but is are was were be been being "
    "it its this that these those as what which who whom whose when where why how did do "
    "does has have had not no yes than then there their they he she his her i you we our "
    "s can could would should will shall may might must also into about over under after "
    "before between during according source sources document documents answer "
    "的 了 是 在 和 与 及 或 也 都 就 而 之 其 这 那 有 为 以 于 中 上 下 个 吗 呢 么 什 怎 谁 哪".split()
)


@dataclass(frozen=True, slots=True)
class Attribution:
    """The answer with its citations checked."""

    text: str
    cited: list[int]
    grounded: bool
    support: dict[int, float]
    misattributed: bool = False


def find_citations(text: str) -> list[int]:
    """Source numbers cited in the text, in first-seen order, without repeats."""
    seen: list[int] = []
    for marker in _MARKER.finditer(text):
        for n in re.findall(r"\d+", marker.group(1)):
            if int(n) not in seen:
                seen.append(int(n))
    return seen


def rewrite_markers(text: str, keep: set[int]) -> str:
    """Drop the numbers not in `keep` from every marker (and empty markers entirely)."""

    def fix(marker: re.Match[str]) -> str:
        nums = [n for n in re.findall(r"\d+", marker.group(1)) if int(n) in keep]
        lead = marker.group(0)[0] if marker.group(0)[0].isspace() else ""
        return lead + "".join(f"[{n}]" for n in nums) if nums else ""

    return _MARKER.sub(fix, text)


def _cite_instead(text: str, n: int) -> str:
    """The first marker becomes [n], other markers go; with no marker, [n] is appended."""
    if not _MARKER.search(text):
        return text.rstrip() + f" [{n}]"
    first = _MARKER.search(text)
    assert first is not None
    lead = first.group(0)[0] if first.group(0)[0].isspace() else ""
    head = text[: first.start()] + lead + f"[{n}]"
    return head + rewrite_markers(text[first.end() :], set())


def strip_markers(text: str) -> str:
    """The text without any citation markers."""
    return _MARKER.sub("", text).strip()


def content_tokens(text: str) -> list[str]:
    """Lowercase words without stopwords; CJK runs become character bigrams."""
    out: list[str] = []
    for run in _RUN.findall(text.lower()):
        if not _CJK.match(run):
            out.extend(t for t in _TOKEN.findall(run) if t not in STOPWORDS)
        elif len(run) == 1:
            if run not in STOPWORDS:
                out.append(run)
        else:
            # Single characters are too common to signal support; bigrams are not.
            out.extend(
                run[i : i + 2]
                for i in range(len(run) - 1)
                if not (run[i] in STOPWORDS and run[i + 1] in STOPWORDS)
            )
    return out


def coverage(needles: list[str], haystack: str) -> float:
    """Share of `needles` (content tokens) present in the haystack's tokens."""
    if not needles:
        return 0.0
    have = set(content_tokens(haystack))
    return sum(t in have for t in needles) / len(needles)


def attribute(
    answer: str,
    question: str,
    sources: dict[int, str],
    min_support: float = 0.5,
    ratio: float = 0.6,
    relevance: dict[int, float] | None = None,
    min_relevance: float = 0.0,
) -> Attribution:
    """Check the answer's citations against the sources (see the module docstring)."""
    valid = [n for n in find_citations(answer) if n in sources]
    text = rewrite_markers(answer, set(valid))
    top = max(relevance.values(), default=0.0) if relevance else 0.0
    citable = {n for n in sources if not relevance or relevance.get(n, 0.0) >= min_relevance * top}
    q = set(content_tokens(question))
    claim = content_tokens(strip_markers(text))
    novel = [t for t in claim if t not in q] or claim
    support = {n: coverage(novel, body) for n, body in sources.items()}
    best = max(citable, key=lambda n: (support[n], -n), default=None)
    if best is None or support[best] < min_support:
        supported_elsewhere = max(support.values(), default=0.0) >= min_support
        if supported_elsewhere or (valid and not citable.intersection(valid)):
            return Attribution(strip_markers(text), [], False, support, misattributed=True)
        kept = [n for n in valid if n in citable]
        if kept != valid:
            text = rewrite_markers(text, set(kept))
        return Attribution(text, kept, False, support)
    keep = [n for n in valid if n in citable and support[n] >= min_support and support[n] >= ratio * support[best]]
    if not keep:
        keep = [best]
        text = _cite_instead(text, best)
    elif keep != valid:
        text = rewrite_markers(text, set(keep))
    return Attribution(text, keep, True, support)


def split_sentences(text: str) -> list[str]:
    """The text's sentences (split after . ! ? and their CJK forms), stripped, none empty.

    A full stop after an initial or a common abbreviation (`John H. McArthur`,
    `Dr. Smith`, `U.S. Army`) does not end a sentence.
    """
    out: list[str] = []
    for piece in _SENTENCE.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if out and _ABBREVIATION.search(out[-1]):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def starts_with_marker(text: str) -> bool:
    """Whether the text begins with a citation marker such as [1]."""
    return bool(_MARKER.match(text.lstrip()))


def supporting_sentence(texts: list[str], answer: str, question: str, min_support: float) -> str | None:
    """The sentence of `texts` holding most of the answer's new words, if it holds `min_support` of them.

    New words are the answer's content words not already in the question (as
    in `attribute`). Ties go to the earlier text and sentence: callers pass
    the whole chunk before the packed excerpt, so the quote is a full sentence.
    """
    q = set(content_tokens(question))
    claim = content_tokens(strip_markers(answer))
    novel = [t for t in claim if t not in q] or claim
    if not novel:
        return None
    sentences = [s for text in texts for s in split_sentences(text)]
    best = max(sentences, key=lambda s: coverage(novel, s), default=None)
    if best is None or coverage(novel, best) < min_support:
        return None
    return best.strip(" …")


def best_snippet(source_text: str, answer: str, max_chars: int = 240) -> str:
    """The source sentence that shares most words with the answer, trimmed."""
    sentences = split_sentences(source_text) or [source_text]
    claim = content_tokens(strip_markers(answer))
    best = max(sentences, key=lambda s: coverage(claim, s)) if claim else sentences[0]
    best = best.strip()
    return best if len(best) <= max_chars else best[: max_chars - 1].rstrip() + "…"
