"""Answer eval on SQuAD-style data: EM/F1, citations, refusals and faithfulness.

EM and F1 follow the official SQuAD v1.1 script (lower-case, drop punctuation
and English articles, collapse whitespace); Chinese text is compared per
character, as in CMRC, because it has no spaces to split on.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Protocol

from zhiku.eval.beir import BeirDataset

_PUNCT = set(string.punctuation) | {"。", "，", "、", "；", "：", "？", "！", "“", "”", "（", "）", "《", "》"}
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
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
        precision, recall = citation_scores(result.citations, list(dataset.qrels.get(qid, {})))
        rows.append(
            {
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

    return {
        "questions": len(rows),
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
