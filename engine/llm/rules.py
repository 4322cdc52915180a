"""Ask's rules in one place: when to refuse, when to quote, what counts as an answer.

The chain (engine/llm/ask.py) asks these questions, in order:
1. Before the model: each *gate* (`no_results`, `weak_retrieval`,
   `off_topic`) looks at what retrieval found and returns a `RefusalReason`
   or None. The first reason refuses without calling the model.
2. After the model: `declined` says whether the reply is a non-answer (a
   refusal phrasing, a copied source header, the question restated); the
   citation check (`citations.attribute`) says whether it is `unsupported`
   or `ungrounded`.
3. When the model gave no usable answer, `quote_confidence` (a small logistic
   scorer over signals the chain already has, fitted on calibration questions;
   see `QUOTE_WEIGHTS`) says whether the best passage is worth quoting instead
   of refusing (`mode: "quote"`).

Every threshold is a setting (`AskSettings`) or a named constant here, with
the measurement that chose it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from zhiku.engine.llm.answer import RefusalReason
from zhiku.engine.llm.citations import content_tokens, coverage, starts_with_marker, strip_markers
from zhiku.engine.llm.context import Source
from zhiku.engine.llm.templates import Lang
from zhiku.engine.settings import AskSettings
from zhiku.engine.types import Hit


@dataclass(slots=True)
class Evidence:
    """What the gates judge: the question and what retrieval found for it."""

    question: str
    lang: Lang
    hits: Sequence[Hit]
    sources: Sequence[Source]
    # Share of the question's content words each packed source holds.
    relevance: Mapping[int, float]
    # The embedder's calibrated relevance floor for this language (None: unknown).
    dense_floor: float | None = None
    # The closest chunk's dense score, looked up on first use (one engine call).
    closest_dense: Callable[[], float | None] = lambda: None
    _dense: list[float | None] = field(default_factory=list)

    @property
    def best_relevance(self) -> float:
        """The best packed source's question coverage."""
        return max(self.relevance.values(), default=0.0)

    def dense_score(self) -> float | None:
        """The closest chunk's dense score (cached)."""
        if not self._dense:
            self._dense.append(self.closest_dense())
        return self._dense[0]


# -- gates before the model -----------------------------------------------------------

Gate = Callable[[Evidence, AskSettings], "RefusalReason | None"]


def no_results(ev: Evidence, s: AskSettings) -> RefusalReason | None:
    """Nothing was retrieved (or nothing fit the prompt)."""
    return RefusalReason.NO_RESULTS if not ev.sources else None


def weak_retrieval(ev: Evidence, s: AskSettings) -> RefusalReason | None:
    """The best source covers too little of the question, or the fused score is below `min_score`.

    Chinese words are counted in character bigrams, which paraphrase breaks
    more often, so Chinese has its own floor (`min_coverage_cjk`).
    """
    if s.min_score is not None and ev.hits and ev.hits[0].score < s.min_score:
        return RefusalReason.WEAK_RETRIEVAL
    floor = s.min_coverage_cjk if ev.lang == "zh" else s.min_coverage
    if ev.relevance and ev.best_relevance < floor:
        return RefusalReason.WEAK_RETRIEVAL
    return None


def off_topic(ev: Evidence, s: AskSettings) -> RefusalReason | None:
    """The closest chunk by embedding is less similar than the embedder's floor."""
    floor = s.min_dense_score if s.min_dense_score is not None else ev.dense_floor
    if not s.dense_gate or floor is None:
        return None
    score = ev.dense_score()
    return RefusalReason.OFF_TOPIC if score is None or score < floor else None


GATES: tuple[Gate, ...] = (no_results, weak_retrieval, off_topic)


def gate(ev: Evidence, s: AskSettings) -> RefusalReason | None:
    """The first gate's reason to refuse, or None when retrieval is good enough to ask the model."""
    for check in GATES:
        reason = check(ev, s)
        if reason is not None:
            return reason
    return None


# -- is the model's reply an answer? ----------------------------------------------------

# Ways a model says the sources lack the answer (besides the exact refusal line).
_MODEL_REFUSAL = re.compile(
    r"not found in the (?:documents|sources)|(?:do|does|did) not (?:contain|provide|mention)"
    r"|(?:no|not enough) information|cannot (?:find|answer|be answered)|unable to (?:find|answer)"
    r"|没有找到|未找到|找不到|没有提到|未提及|无法回答|没有相关",
    re.I,
)

# Questions answered by confirming them: "Is Paris the capital?" "巴黎是首都吗？"
_YES_NO_QUESTION = re.compile(
    r"^\W*(?:is|are|was|were|am|do|does|did|can|could|will|would|shall|should|has|have|had|may|might|must)\b"
    r"|吗\W*$|是否|还是|是不是|有没有",
    re.I,
)

# A reply that adds no word of its own and repeats this share of the
# question's content words only restates it.
RESTATE_COVERAGE = 0.8


def says_not_found(text: str) -> bool:
    """Whether a model reply is a refusal rather than an answer."""
    return not text.strip() or bool(_MODEL_REFUSAL.search(text))


def echoes_headers(text: str, sources: Sequence[Source]) -> bool:
    """Whether a reply only repeats source header lines ("[1] Title") or bare markers.

    Small models sometimes copy a source's header instead of answering. Only
    the header's own form counts (a marker first, then that source's label),
    so "Paris [1]" is an answer even when source [1] is titled "Paris".
    """
    headers = {_plain(src.header()) for src in sources}
    lines = [line for line in text.splitlines() if line.strip()]
    return all(
        not strip_markers(line) or (starts_with_marker(line) and _plain(line) in headers) for line in lines
    )


def restates(text: str, question: str) -> bool:
    """Whether a reply only repeats the question instead of answering it.

    Yes/no and either-or questions are exempt, since confirming one can
    repeat it word for word.
    """
    asked = content_tokens(question)
    reply = content_tokens(strip_markers(text))
    if not asked or not reply or _YES_NO_QUESTION.search(question.strip()):
        return False
    return set(reply) <= set(asked) and coverage(asked, strip_markers(text)) >= RESTATE_COVERAGE


def declined(reply: str, question: str, sources: Sequence[Source]) -> RefusalReason | None:
    """`MODEL` when the reply is no answer: a refusal, a copied header, or the question restated."""
    if says_not_found(reply) or echoes_headers(reply, sources) or restates(reply, question):
        return RefusalReason.MODEL
    return None


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


# -- quote instead of refusing -----------------------------------------------------------

# Logistic weights over `quote_features`, per language (coverage is counted
# in words for English, character bigrams for Chinese, and an embedder may
# have a dense floor for one language only), fitted by
# `bench/answer_quality.py --calibrate 150` then `--fit` on calibration
# questions, never the benchmark's: squad-dev and cmrc-trial questions outside
# the seed-7 sample. Label: the quoted sentence holds a gold answer and comes
# from the gold passage; unanswerable questions (held-out articles) are
# negatives; only questions that pass the gates count (quotes follow them).
# squad-dev, MiniLM: 119 of 300 questions pass (114 answerable, 78 % of
# those quotable); fitted on half, quoting at >= 0.8 (`min_quote_confidence`)
# on the other half was right 0.83 of the time (base rate 0.75; 0.76 at 0.5),
# and quoted none of the unanswerable ones. The weights are the fit on all 119.
QUOTE_WEIGHTS: dict[str, dict[str, float]] = {
    "en": {"bias": -1.944, "sentence_coverage": 4.223, "dense_margin": 3.787},
    # cmrc-trial (30 articles held out), MiniLM (no Chinese dense floor, so
    # dense_margin is 0): 134 of 214 questions pass (125 answerable, 60 %
    # quotable); fitted on half, quoting at >= 0.8 on the other half was right
    # 0.93 of the time (14 of 67 quoted), and quoted none of the 5 unanswerable.
    "zh": {"bias": -2.06, "sentence_coverage": 4.756, "dense_margin": 0.0},
}


def quote_features(ev: Evidence, sentence_coverage: float) -> dict[str, float]:
    """The signals the quote scorer reads; all are calibrated per embedder or language-neutral.

    `dense_margin` is the closest chunk's dense score minus the embedder's
    relevance floor for the language (0 when the embedder has none), so the
    scorer carries over when the default embedder changes.
    """
    score = ev.dense_score() if ev.dense_floor is not None else None
    margin = score - ev.dense_floor if score is not None and ev.dense_floor is not None else 0.0
    return {"bias": 1.0, "sentence_coverage": sentence_coverage, "dense_margin": margin}


def quote_confidence(features: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """The scorer's probability that quoting the passage answers the question."""
    z = sum(weights.get(name, 0.0) * value for name, value in features.items())
    return 1.0 / (1.0 + math.exp(-z))


def fit_quote_weights(
    rows: Sequence[Mapping[str, float]], labels: Sequence[bool], l2: float = 1e-2, steps: int = 50
) -> dict[str, float]:
    """Logistic-regression weights (Newton's method, small L2) for `quote_confidence`.

    How `QUOTE_WEIGHTS` was made (bench/answer_quality.py --fit); kept here so
    the scorer can be refitted for another embedder or model.
    """
    import numpy as np

    names = list(QUOTE_WEIGHTS["en"])
    x = np.array([[row.get(name, 0.0) for name in names] for row in rows], dtype=float)
    y = np.array(labels, dtype=float)
    w = np.zeros(len(names))
    penalty = l2 * np.eye(len(names))
    penalty[0, 0] = 0.0  # the bias is not shrunk
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-x @ w))
        grad = x.T @ (p - y) + penalty @ w
        hess = x.T @ (x * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(len(names))
        w -= np.linalg.solve(hess, grad)
    return {name: round(float(v), 3) for name, v in zip(names, w)}
