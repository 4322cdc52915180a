"""Span quotes (issue 14): the ranker's best two sentences, quoted and cited, when the best alone is unsure."""

from __future__ import annotations

from zhiku.engine.llm.abilities import LLMService
from zhiku.engine.llm.answer import RefusalReason
from zhiku.engine.llm.fake import ScriptedGenerator
from zhiku.engine.llm.rules import (
    SPAN_QUOTE_FEATURES,
    SPAN_QUOTE_WEIGHTS,
    SPAN_THRESHOLDS,
    span_features,
    span_quote_confidence,
    span_quote_features,
    span_thresholds,
)
from zhiku.engine.llm.span import candidates, partner_index, passage, quote_text
from zhiku.engine.settings import AskSettings
from zhiku.engine.types import Hit

from test_llm_ask import Retriever, service

FIRST = Hit("sb50", "sb50#0", "Super Bowl 50 was an American football game. The game was played on February 7, 2016. "
            "Lady Gaga sang the national anthem. The Broncos won the anthem toss.", 0.9, title="Super Bowl 50")
OTHER = Hit("halftime", "halftime#0", "Coldplay headlined the halftime show. Beyoncé sang at the halftime show.",
            0.8, title="Halftime")
QUESTION = "Who sang at the Super Bowl 50 game?"
UNSURE = {"min_gate_confidence": 0.0, "min_span_confidence": 0.999}  # the best sentence alone never suffices
FLAT = lambda m, c: [0.0] * len(c)  # noqa: E731  (the model has no preference)


def _ask(hits: list[Hit], **settings: object):  # type: ignore[no-untyped-def]
    svc = LLMService(ScriptedGenerator([], scorer=FLAT), Retriever(hits), AskSettings(**{**UNSURE, **settings}))
    return svc, svc.ask(QUESTION)


def test_an_unsure_best_sentence_is_quoted_with_the_next_best_of_its_source_in_document_order():
    svc, answer = _ask([FIRST], min_span_quote_confidence=0.0)
    spans = candidates(QUESTION, svc._chain()._pack([FIRST], 5, QUESTION), "en")
    pair = passage(spans)
    assert {sp.text for sp in pair} == {sp.text for sp in spans[:2]}  # one source: the best two
    assert [sp.position for sp in pair] == sorted(sp.position for sp in pair)
    assert answer.mode == "quote" and answer.grounded and answer.text == quote_text(pair)
    assert answer.text.startswith("“") and answer.text.endswith("” [1]")
    (cite,) = answer.citations
    assert cite.doc_id == "sb50"


def test_a_quote_keeps_to_the_best_sentences_source_and_cites_only_it():
    svc = service([], retriever=Retriever([FIRST, OTHER]))
    spans = candidates(QUESTION, svc._chain()._pack([FIRST, OTHER], 5, QUESTION), "en")
    first = [sp for sp in spans if sp.source.n == 1]
    other = [sp for sp in spans if sp.source.n == 2]
    ranked = [first[0], other[0], first[1], *first[2:], *other[1:]]  # the runner-up is the other source's
    assert partner_index(ranked) == 2
    pair = passage(ranked)
    assert {id(sp) for sp in pair} == {id(first[0]), id(first[1])}
    assert [sp.position for sp in pair] == sorted(sp.position for sp in pair)
    assert quote_text(pair).endswith("” [1]")
    assert passage([other[0]]) == [other[0]] and partner_index([other[0]]) is None  # nothing to pair with
    _, answer = _ask([FIRST, OTHER], min_span_quote_confidence=0.0)
    assert answer.mode == "quote" and len(answer.citations) == 1


def test_quote_text_marks_a_gap_between_sentences_of_one_source():
    svc = service([], retriever=Retriever([FIRST]))
    spans = candidates(QUESTION, svc._chain()._pack([FIRST], 5, QUESTION), "en")
    by_pos = {sp.position: sp for sp in spans}
    assert quote_text([by_pos[0], by_pos[1]]) == f"“{by_pos[0].text} {by_pos[1].text}” [1]"
    assert quote_text([by_pos[0], by_pos[2]]) == f"“{by_pos[0].text} … {by_pos[2].text}” [1]"


def test_without_quote_mode_or_when_the_quote_scorer_is_unsure_it_is_refused_as_the_models():
    for settings in ({"quote_mode": False, "min_span_quote_confidence": 0.0}, {"min_span_quote_confidence": 0.999}):
        _, answer = _ask([FIRST], **settings)
        assert answer.mode == "refusal" and answer.refusal_reason is RefusalReason.MODEL and answer.citations == []


def test_the_quote_scorer_reads_the_partner_and_the_models_pick_among_the_two():
    svc = service([], retriever=Retriever([FIRST]))
    spans = candidates(QUESTION, svc._chain()._pack([FIRST], 5, QUESTION), "en")
    partner = partner_index(spans)
    f = span_quote_features(spans, partner, 0.8, partner)
    assert set(f) == set(SPAN_QUOTE_FEATURES)
    assert f["agree_llm"] == 1.0 and span_features(spans, 0.8, partner)["agree_llm"] == 0.0
    assert f["p2"] == spans[partner].score and f["share2"] >= f["share"]
    alone = span_quote_features(spans[:1], None, 0.8, 0)  # a source with one sentence: the best alone
    assert alone["p2"] == 0.0 and alone["agree_llm"] == 1.0
    for lang, weights in SPAN_QUOTE_WEIGHTS.items():
        assert set(weights) == set(SPAN_QUOTE_FEATURES), lang
        # The pair's share of the ranker's belief is what a quote rests on.
        assert weights["share2"] > 0 and 0.0 < span_quote_confidence(f, lang) < 1.0, lang


def test_each_language_has_its_calibrated_thresholds_and_settings_override_them():
    assert span_thresholds("en", None, None) == SPAN_THRESHOLDS["en"]
    assert span_thresholds("zh", None, None) == SPAN_THRESHOLDS["zh"]
    assert span_thresholds("zh", 0.5, None) == (0.5, SPAN_THRESHOLDS["zh"][1])
    assert span_thresholds("en", None, 0.9) == (SPAN_THRESHOLDS["en"][0], 0.9)
