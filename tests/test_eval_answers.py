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


@pytest.mark.parametrize(
    ("answer", "gold", "expected"),
    [
        ("The Denver Broncos won [1].", ["Denver Broncos"], True),
        ("Denver Broncos", ["the Denver Broncos"], True),  # articles do not count
        ("Denverx Broncos", ["Denver Broncos"], False),  # whole words for Latin text
        ("in the 1990s", ["1990"], False),
        ("玩家可选择 经典、热血、狙击等模式进行游戏 [1]", ["可选择经典、热血、狙击等模式进行游戏。"], True),
        ("踢爆", ["踢爆"], True),
        ("４分钟", ["4分钟"], True),  # NFKC: full-width digits
        # A Latin gold string inside Chinese text: CJK characters bound words as spaces do.
        ("MPQ-78雷达系统包括搜索雷达，有效距离30km，可同时追踪20个目标 [1]", ["30km"], True),
        ("耶利米（希伯来文： יִרְמְיָהוּ）是一位先知", [" יִרְמְיָהוּ"], True),
        ("有效距离130km", ["30km"], False),
        ("有效距离30kms", ["30km"], False),
        ("", ["x"], False),
    ],
)
def test_contains_gold_normalises_like_the_metric_says(answer, gold, expected):
    from zhiku.eval.answers import contains_gold

    assert contains_gold(answer, gold) is expected


def test_outcome_needs_the_gold_string_and_the_gold_passage():
    from zhiku.eval.answers import outcome

    assert outcome("Denver Broncos", False, ["d1"], ["Denver Broncos"], ["d1"]) == "correct"
    assert outcome("Denver Broncos", False, ["d2"], ["Denver Broncos"], ["d1"]) == "wrong"
    assert outcome("Carolina", False, ["d1"], ["Denver Broncos"], ["d1"]) == "wrong"
    assert outcome("", True, [], ["Denver Broncos"], ["d1"]) == "refused"


def test_the_ask_answerer_runs_the_shipped_chain():
    from zhiku.engine.llm.fake import ScriptedGenerator
    from zhiku.engine.llm.abilities import LLMService
    from zhiku.engine.settings import AskSettings
    from zhiku.engine.types import Hit
    from zhiku.eval.answerers import ANSWERERS, AskAnswerer

    hit = Hit("d1", "d1#0", "The Denver Broncos defeated the Carolina Panthers to win Super Bowl 50.", 0.9)
    svc = LLMService(ScriptedGenerator(["Denver Broncos [1]"]), lambda q, top_k=10, filters=None: [hit], AskSettings())
    bot = AskAnswerer(svc)
    result = bot.answer("Who won Super Bowl 50?")
    assert result.mode == "answer" and result.citations == ["d1"] and "Denver Broncos" in result.text
    assert "[1]" not in result.text and result.total_s is not None and result.ttft_s is not None
    assert {"ask", "rag"} <= set(ANSWERERS)
