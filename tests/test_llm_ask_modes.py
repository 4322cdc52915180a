"""Ask's answer modes and rules on the scripted model: span answers, quotes, the calibrated
scorer, named refusal reasons, one serialisation, and parent expansion over current data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zhiku.engine.llm.answer import RefusalReason
from zhiku.engine.llm.fake import ScriptedGenerator
from zhiku.engine.llm.rules import (
    GATES,
    QUOTE_WEIGHTS,
    fit_quote_weights,
    quote_confidence,
)
from zhiku.engine.llm.abilities import LLMService
from zhiku.engine.llm.templates import REFUSALS
from zhiku.engine.settings import AskSettings
from zhiku.engine.types import Hit

from test_llm_ask import Retriever, service

SB50 = "The Denver Broncos defeated the Carolina Panthers 24-10 to win Super Bowl 50."


def test_a_span_answer_is_followed_by_the_cited_sentence_verbatim():
    answer = service(["Denver Broncos [1]"]).ask("Who won Super Bowl 50?")
    assert answer.mode == "answer" and answer.refusal_reason is None and not answer.refused
    assert answer.text == f"Denver Broncos [1]\n\n“{SB50}” [1]"
    assert [c.doc_id for c in answer.citations] == ["sb50"]


def test_an_answer_that_is_already_the_sentence_is_not_repeated():
    answer = service([SB50 + " [1]"]).ask("Who won Super Bowl 50?")
    assert answer.text == SB50 + " [1]"


def test_the_sentence_can_be_switched_off():
    answer = service(["Denver Broncos [1]"], answer_with_sentence=False).ask("Who won Super Bowl 50?")
    assert answer.text == "Denver Broncos [1]"


def test_when_the_model_declines_but_retrieval_is_strong_the_best_sentence_is_quoted():
    answer = service(["Not found in the documents."], min_quote_confidence=0.01).ask("Who won Super Bowl 50?")
    assert answer.mode == "quote" and not answer.refused and answer.refusal_reason is None
    assert answer.text == f"“{SB50}” [1]"
    (cite,) = answer.citations
    assert (cite.n, cite.doc_id) == (1, "sb50") and cite.snippet == SB50


def test_the_calibrated_scorer_decides_between_quote_and_refusal():
    refused = service(["Not found in the documents."], min_quote_confidence=1.0).ask("Who won Super Bowl 50?")
    assert refused.mode == "refusal" and refused.refusal_reason is RefusalReason.MODEL
    assert refused.text == REFUSALS["en"] and refused.citations == []
    off = service(["Not found in the documents."], quote_mode=False).ask("Who won Super Bowl 50?")
    assert off.mode == "refusal"


def test_an_unsupported_answer_can_become_a_quote_of_the_best_source():
    question = "Which team did the Denver Broncos defeat to win Super Bowl 50?"
    answer = service(["Santa Clara, California [2]."], min_quote_confidence=0.01).ask(question)
    assert answer.mode == "quote" and [c.doc_id for c in answer.citations] == ["sb50"]
    assert "Santa Clara" not in answer.text


def test_gates_before_the_model_never_quote():
    svc = service([], min_quote_confidence=0.0)  # any model call would exhaust the script
    answer = svc.ask("How tall is the Eiffel tower in Paris?")
    assert answer.mode == "refusal" and answer.refusal_reason is RefusalReason.WEAK_RETRIEVAL


def test_quote_confidence_rises_with_every_signal_and_fits_separable_data():
    base = {"bias": 1.0, "sentence_coverage": 0.5, "dense_margin": 0.0}
    for lang, weights in QUOTE_WEIGHTS.items():
        p = quote_confidence(base, weights)
        for name in ("sentence_coverage", "dense_margin"):
            assert quote_confidence({**base, name: base[name] + 0.3}, weights) >= p, (lang, name)
    rows = [{**base, "sentence_coverage": c} for c in (0.1, 0.2, 0.3, 0.7, 0.8, 0.9)]
    fitted = fit_quote_weights(rows, [False, False, False, True, True, True])
    assert set(fitted) == set(QUOTE_WEIGHTS["en"])
    assert quote_confidence(rows[0], fitted) < 0.5 < quote_confidence(rows[-1], fitted)


def test_every_gate_returns_a_refusal_reason_or_none():
    from zhiku.engine.llm.rules import Evidence

    ev = Evidence(question="q", lang="en", hits=[], sources=[], relevance={})
    reasons = [g(ev, AskSettings()) for g in GATES]
    assert reasons[0] is RefusalReason.NO_RESULTS
    assert all(r is None or isinstance(r, RefusalReason) for r in reasons)


def test_mode_and_reason_serialise_the_same_way_everywhere():
    from zhiku.api.routers._convert import answer_out

    answer = service(["Not found in the documents."], quote_mode=False).ask("Who won Super Bowl 50?")
    as_dict = answer.to_dict()
    api = answer_out(answer).model_dump(mode="json")
    assert as_dict["mode"] == api["mode"] == "refusal"
    assert as_dict["refusal_reason"] == api["refusal_reason"] == "model"
    assert as_dict["sources"] == api["sources"]
    json.dumps(as_dict)


def test_refusal_reason_is_an_enum_in_the_openapi_schema():
    from zhiku.api.schemas.responses import AskResponse

    schema = AskResponse.model_json_schema()
    reason = schema["$defs"]["RefusalReason"]
    assert set(reason["enum"]) == {r.value for r in RefusalReason}
    assert set(schema["properties"]["mode"]["enum"]) == {"answer", "quote", "refusal"}


def test_parent_expansion_reads_the_document_as_it_is_now(tmp_path: Path):
    """Regression (issue 11): a replaced document was expanded to its old text."""
    from zhiku.engine.kb import KnowledgeBase

    def text(year: int) -> str:
        filler = " ".join(f"Filler sentence number {i} about the stadium crowd." for i in range(80))
        return filler + f" The Denver Broncos won Super Bowl 50 in {year}."

    with KnowledgeBase(tmp_path, "t", embed__backend="fake") as kb:
        kb.add_texts([text(2016)], ids=["sb50"], metadatas=[{"title": "Super Bowl 50"}])
        assert len(kb.get_document("sb50").chunks) > 1  # so hits expand to their neighbours
        svc = LLMService(
            ScriptedGenerator(["The Broncos [1]."]),
            kb.search,
            AskSettings(dense_gate=False, min_coverage=0.0, context_tokens=4000, first_source_tokens=None,
                        source_tokens=None),
            get_document=kb.get_document,
        )
        first = svc.ask("When did the Denver Broncos win Super Bowl 50?")
        assert "2016" in " ".join(s.text for s in first.sources)
        kb.add_texts([text(1999)], ids=["sb50"], metadatas=[{"title": "Super Bowl 50"}])
        svc.generator._next = 0
        again = svc.ask("When did the Denver Broncos win Super Bowl 50?")
        packed = " ".join(s.text for s in again.sources)
        assert "1999" in packed and "2016" not in packed
