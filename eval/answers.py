"""Answer eval on SQuAD-style data: EM/F1, citations, refusals and faithfulness.

EM and F1 follow the official SQuAD v1.1 script (lower-case, drop punctuation
and English articles, collapse whitespace); Chinese text is compared per
character, as in CMRC, because it has no spaces to split on.
"""

from __future__ import annotations

import re
import statistics
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Literal, Protocol

from zhiku.eval.beir import BeirDataset

_PUNCT = set(string.punctuation) | {"。", "，", "、", "；", "：", "？", "！", "“", "”", "（", "）", "《", "》"}
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# Whole-word bounds for a Latin gold string: no letter or digit of a spaced script beside it.
_NOT_WORD_BEFORE = r"(?<![^\W_\u3400-\u9fff\uf900-\ufaff])"
_NOT_WORD_AFTER = r"(?![^\W_\u3400-\u9fff\uf900-\ufaff])"
_CJK_SPACE = re.compile(r"(?<=[\u3400-\u9fff\uf900-\ufaff]) | (?=[\u3400-\u9fff\uf900-\ufaff])")
_REFUSALS = (
    "i don't know", "i do not know", "cannot answer", "can't answer", "not enough information",
    "no answer", "not mentioned", "does not contain", "doesn't contain", "unanswerable",
    "不知道", "无法回答", "没有提到", "未提及", "无法确定", "资料中没有",
)


def normalize_answer(text: str) -> str:
    """Official SQuAD normalisation: lower, no punctuation, no articles, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    """Normalised tokens: whitespace words, with each CJK character its own token."""
    return _CJK.sub(lambda m: f" {m.group(0)} ", normalize_answer(text)).split()


def exact_match(prediction: str, gold: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised gold answer."""
    pred = answer_tokens(prediction)
    return float(any(pred == answer_tokens(g) for g in gold)) if gold else 0.0


def _f1(pred: list[str], gold: list[str]) -> float:
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, gold: Sequence[str]) -> float:
    """Token F1 against the best-matching gold answer."""
    pred = answer_tokens(prediction)
    return max((_f1(pred, answer_tokens(g)) for g in gold), default=0.0)


def normalize_gold(text: str) -> str:
    """The form gold strings are looked for in: NFKC, lower case, no punctuation, single spaces.

    Unicode punctuation of every script goes (CJK quotes and full stops too),
    and spaces next to a CJK character go, so a Chinese gold span matches
    however the answer spaces or punctuates it.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(ch).startswith("P") or ch in _PUNCT else ch for ch in text)
    text = " ".join(_ARTICLES.sub(" ", text).split())
    return _CJK_SPACE.sub("", text)


def contains_gold(answer: str, gold: Sequence[str]) -> bool:
    """Whether the answer holds one of the gold strings (after `normalize_gold`, whole words for Latin text).

    A whole word ends at a space, punctuation or a CJK character: Chinese
    writes `有效距离30km，` with no space, and 30km is a whole word there.
    """
    body = normalize_gold(answer)
    for g in gold:
        wanted = normalize_gold(g)
        if not wanted:
            continue
        if _CJK.search(wanted) and wanted in body or re.search(rf"{_NOT_WORD_BEFORE}{re.escape(wanted)}{_NOT_WORD_AFTER}", body):
            return True
    return False


Outcome = Literal["correct", "wrong", "refused"]


def outcome(answer: str, refused: bool, cited: Sequence[str], gold: Sequence[str], relevant: Sequence[str]) -> Outcome:
    """For an answerable question: correct (holds a gold string and cites a gold passage), wrong, or refused.

    An answer that holds a gold string but cites no gold passage is neither
    correct nor wrong by the issue's wording; it is counted as wrong here, so
    `correct` is strict and `wrong` is an upper bound.
    """
    if refused:
        return "refused"
    if contains_gold(answer, gold) and set(cited) & set(relevant):
        return "correct"
    return "wrong"


def citation_scores(cited: Sequence[str], relevant: Sequence[str]) -> tuple[float, float]:
    """(precision, recall) of cited document ids against the judged relevant ones."""
    cited_set, relevant_set = set(cited), set(relevant)
    hit = len(cited_set & relevant_set)
    precision = hit / len(cited_set) if cited_set else 0.0
    recall = hit / len(relevant_set) if relevant_set else 0.0
    return precision, recall


def is_refusal(text: str) -> bool:
    """Whether an answer declines to answer (English or Chinese phrasing)."""
    lowered = text.strip().lower()
    return not lowered or any(marker in lowered for marker in _REFUSALS)


def support_ratio(answer: str, contexts: Sequence[str]) -> float:
    """Share of the answer's normalised tokens that occur in the cited contexts."""
    tokens = answer_tokens(answer)
    if not tokens:
        return 0.0
    vocabulary = set(answer_tokens(" ".join(contexts)))
    return sum(tok in vocabulary for tok in tokens) / len(tokens)


@dataclass
class Answer:
    """What an answerer returns: text, cited document ids and their texts."""

    text: str
    citations: list[str] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)
    refused: bool = False
    mode: str = ""  # answer | quote | refusal (the shipped chain); empty for baselines
    ttft_s: float | None = None  # time to the first streamed token (None: no model call)
    total_s: float | None = None


class Answerer(Protocol):
    """Anything that answers a question from the knowledge base."""

    def answer(self, question: str) -> Answer: ...


Judge = Callable[[str, str, Sequence[str]], bool]
"""`judge(question, answer, contexts)` says whether the contexts support the answer."""


def overlap_judge(threshold: float = 0.8) -> Judge:
    """The default faithfulness check: most answer tokens appear in the cited chunks."""
    return lambda question, answer, contexts: support_ratio(answer, contexts) >= threshold


def evaluate_answers(
    dataset: BeirDataset,
    answerer: Answerer,
    judge: Judge | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> dict:
    """Answer every query; a summary of the metrics plus one row per question."""
    judge = judge or overlap_judge()
    rows = []
    for qid, question in dataset.queries.items():
        gold = dataset.answers.get(qid, [])
        result = answerer.answer(question)
        refused = result.refused or is_refusal(result.text)
        relevant = list(dataset.qrels.get(qid, {}))
        precision, recall = citation_scores(result.citations, relevant)
        rows.append(
            {
                "outcome": outcome(result.text, refused, result.citations, gold, relevant) if gold else None,
                "mode": result.mode or ("refusal" if refused else "answer"),
                "ttft_s": result.ttft_s,
                "total_s": result.total_s,
                "id": qid,
                "question": question,
                "answer": result.text,
                "gold": gold,
                "answerable": bool(gold),
                "refused": refused,
                "em": exact_match(result.text, gold),
                "f1": f1_score(result.text, gold),
                "citation_precision": precision,
                "citation_recall": recall,
                "faithful": None if refused else judge(question, result.text, result.contexts),
            }
        )
        progress(1)
    return {"summary": summarize_answers(rows), "rows": rows}


def summarize_answers(rows: list[dict]) -> dict:
    """Means over answerable questions; refusal rates split by answerability."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    judged = [r for r in rows if r["faithful"] is not None]

    def mean(items: list[dict], key: str) -> float | None:
        return fmean(float(r[key]) for r in items) if items else None

    def rate(items: list[dict], value: str) -> float | None:
        return fmean(r.get("outcome") == value for r in items) if items else None

    def median(key: str) -> float | None:
        values = [r[key] for r in rows if r.get(key) is not None]
        return statistics.median(values) if values else None

    return {
        "questions": len(rows),
        "correct": rate(answerable, "correct"),
        "wrong": rate(answerable, "wrong"),
        "refused": rate(answerable, "refused"),
        "quoted": fmean(r.get("mode") == "quote" for r in rows) if rows else None,
        "ttft_p50_s": median("ttft_s"),
        "total_p50_s": median("total_s"),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "em": mean(answerable, "em"),
        "f1": mean(answerable, "f1"),
        "citation_precision": mean(answerable, "citation_precision"),
        "citation_recall": mean(answerable, "citation_recall"),
        "refusal_rate_unanswerable": mean(unanswerable, "refused"),
        "false_refusal_rate": mean(answerable, "refused"),
        "faithfulness": mean(judged, "faithful"),
    }
