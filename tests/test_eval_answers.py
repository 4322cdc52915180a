"""Answer metrics (official SQuAD normalisation), citations, refusals and the answer-eval loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhiku.eval.answers import (
    Answer,
    citation_scores,
    evaluate_answers,
    exact_match,
    f1_score,
    is_refusal,
    normalize_answer,
    overlap_judge,
    support_ratio,
)
from zhiku.eval.beir import load_beir

BEIR = Path(__file__).parent / "fixtures" / "eval" / "beir"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("The  Ming Dynasty!", "ming dynasty"), ("an apple, a pear", "apple pear"), ("Theory", "theory")],
)
def test_normalize_matches_squad(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_em_and_f1_take_the_best_gold() -> None:
    assert exact_match("the Ming dynasty.", ["Ming dynasty", "Ming"]) == 1.0
    assert exact_match("Ming empire", ["Ming dynasty"]) == 0.0
    # pred {ming, empire} vs gold {ming, dynasty}: P = R = 1/2
    assert f1_score("Ming empire", ["Ming dynasty", "Qing"]) == pytest.approx(0.5)
    assert f1_score("anything", []) == 0.0


def test_chinese_is_compared_per_character() -> None:
    assert exact_match("明朝。", ["明朝"]) == 1.0
    assert f1_score("明代", ["明朝"]) == pytest.approx(0.5)


def test_citations_refusals_and_support() -> None:
    assert citation_scores(["d1", "d2"], ["d1", "d4"]) == (0.5, 0.5)
    assert citation_scores([], ["d1"]) == (0.0, 0.0)
    assert is_refusal("I don't know.") and is_refusal("资料中没有提到") and is_refusal("  ")
    assert not is_refusal("Guido van Rossum")
    assert support_ratio("Guido van Rossum", ["Python was created by Guido van Rossum."]) == 1.0
    assert not overlap_judge()("q", "Larry Wall", ["created by Guido van Rossum"])


class ScriptedAnswerer:
    """Answers from a table keyed by question; anything else is a refusal."""

    def __init__(self, table: dict[str, Answer]) -> None:
        self.table = table

    def answer(self, question: str) -> Answer:
        return self.table.get(question, Answer("I don't know", refused=True))


def test_evaluate_answers_on_fixture() -> None:
    data = load_beir(BEIR)
    bot = ScriptedAnswerer({
        "Which dynasty built most of the Great Wall?": Answer("Ming", ["d1", "d2"], ["built during the Ming dynasty"]),
        "Who created Python?": Answer("Larry Wall", ["d3"], ["Python was created by Guido van Rossum"]),
        "What is the capital of Atlantis?": Answer("Poseidonia", ["d6"], ["Shanghai is a city"]),
    })
    result = evaluate_answers(data, bot)
    s = result["summary"]
    assert (s["questions"], s["answerable"], s["unanswerable"]) == (5, 4, 1)
    assert s["em"] == pytest.approx(0.25)  # only "Ming" is right
    assert s["refusal_rate_unanswerable"] == 0.0  # it made something up
    assert s["false_refusal_rate"] == pytest.approx(0.5)  # q2 and q4 refused
    assert s["citation_precision"] == pytest.approx((0.5 + 1.0) / 4)
    assert s["faithfulness"] == pytest.approx(1 / 3)  # Ming supported; Larry Wall, Poseidonia not
