"""The learned gate and span answers on the scripted model (issue 14)."""

from __future__ import annotations

from zhiku.engine.llm.answer import RefusalReason
from zhiku.engine.llm.abilities import LLMService
from zhiku.engine.llm.fake import ScriptedGenerator
from zhiku.engine.llm.rules import (
    GATE_FEATURES,
    GATE_WEIGHTS,
    Evidence,
    fit_logistic,
    gate,
    gate_features,
    logistic,
    SPAN_RANK_FEATURES,
    SPAN_WEIGHTS,
    span_confidence,
    span_features,
)
from zhiku.engine.llm.span import candidates
from zhiku.engine.settings import AskSettings
from zhiku.engine.types import Hit

from test_llm_ask import Retriever, service

SB50 = "The Denver Broncos defeated the Carolina Panthers 24-10 to win Super Bowl 50."
LONG = Hit(
    "sb50",
    "sb50#0",
    "Super Bowl 50 was an American football game. The game was played on February 7, 2016. "
    "The Denver Broncos defeated the Carolina Panthers 24-10 in Super Bowl 50. Lady Gaga sang the national anthem.",
    0.9,
    title="Super Bowl 50",
)


def _evidence(question: str, hits: list[Hit], floor: float | None = None, closest: Hit | None = None) -> Evidence:
    svc = service([], retriever=Retriever(hits))
    chain = svc._chain()
    sources = chain._pack(hits, 5, question)
    return chain.evidence(question, "en", hits, sources) if floor is None else Evidence(
        question=question, lang="en", hits=hits, sources=sources,
        relevance=chain.evidence(question, "en", hits, sources).relevance,
        dense_floor=floor, closest_dense=lambda: closest,
    )


def test_the_learned_gate_passes_a_question_its_sources_answer_and_refuses_one_they_miss():
    svc = service(["The Denver Broncos [1]."])
    assert svc.ask("Who won Super Bowl 50?").mode == "answer"
    refused = service([]).ask("How tall is the Eiffel tower in Paris?")  # any model call would fail
    assert refused.mode == "refusal" and refused.refusal_reason is RefusalReason.WEAK_RETRIEVAL


def test_the_learned_gate_names_off_topic_when_the_closest_chunk_is_below_the_floor():
    hits = [LONG]
    far = Hit("sb50", "sb50#0", LONG.text, 0.1)
    ev = _evidence("Who sang the anthem at the game in Denver?", hits, floor=0.45, closest=far)
    assert ev.dense_margin() < 0
    assert gate(ev, AskSettings(min_gate_confidence=1.0)) is RefusalReason.OFF_TOPIC
    assert gate(ev, AskSettings(min_gate_confidence=0.0)) is None


def test_gate_features_are_scale_free_and_the_weights_rise_with_every_signal():
    near = Hit("sb50", "sb50#0", LONG.text, 0.6)
    f = gate_features(_evidence("Who sang the national anthem at Super Bowl 50?", [LONG], 0.45, near))
    assert set(f) == set(GATE_FEATURES)
    assert 0.0 <= f["coverage"] <= 1.0 and 0.0 <= f["rare_coverage"] <= 1.0
    assert abs(f["dense_margin"] - (0.6 - 0.45) / 0.45) < 1e-9 and f["agreement"] == 1.0
    # The same cosine scaled (the bilingual embedder's halves) gives the same margin.
    scaled = gate_features(_evidence("Who sang the national anthem at Super Bowl 50?", [LONG], 0.45 * 0.7,
                                     Hit("sb50", "sb50#0", LONG.text, 0.6 * 0.7)))
    assert abs(scaled["dense_margin"] - f["dense_margin"]) < 1e-9
    for lang, weights in GATE_WEIGHTS.items():
        p = logistic(f, weights)
        for name in ("coverage", "rare_coverage", "dense_margin"):
            assert logistic({**f, name: f[name] + 0.3}, weights) >= p, (lang, name)


def test_fit_logistic_separates_separable_rows_over_named_features():
    rows = [{"bias": 1.0, "coverage": c, "rare_coverage": c} for c in (0.1, 0.2, 0.3, 0.7, 0.8, 0.9)]
    w = fit_logistic(rows, [False] * 3 + [True] * 3, ["bias", "coverage", "rare_coverage"])
    assert set(w) == {"bias", "coverage", "rare_coverage"}
    assert logistic(rows[0], w) < 0.5 < logistic(rows[-1], w)


def test_the_fixed_gates_remain_available():
    answer = service([], gate="fixed").ask("How tall is the Eiffel tower in Paris?")
    assert answer.refusal_reason is RefusalReason.WEAK_RETRIEVAL


def test_span_candidates_rank_the_sentences_that_hold_the_rare_question_terms_first():
    svc = service([], retriever=Retriever([LONG]))
    question = "Who sang the national anthem at Super Bowl 50?"
    sources = svc._chain()._pack([LONG], 5, question)
    spans = candidates(question, sources, "en")
    assert spans[0].text == "Lady Gaga sang the national anthem."
    assert all(s.source.n == 1 for s in spans)
    assert all(set(SPAN_RANK_FEATURES) - {"bias"} <= set(s.features) for s in spans)
    assert [s.score for s in spans] == sorted((s.score for s in spans), reverse=True)


def test_the_span_ranker_reads_the_embedding_similarity_when_one_is_given():
    svc = service([], retriever=Retriever([LONG]))
    question = "Who performed before kickoff?"  # no sentence holds these words
    sources = svc._chain()._pack([LONG], 5, question)
    near = "Lady Gaga sang the national anthem."
    spans = candidates(question, sources, "en", lambda q, texts: [0.9 if t == near else 0.2 for t in texts])
    assert spans[0].text == near
    assert spans[0].features["dense_top"] == 1.0 and spans[0].features["dense_gap"] == 0.0
    assert all(s.features["dense_gap"] == -0.7 for s in spans[1:])


def test_a_span_answer_is_the_ranked_best_sentence_verbatim_and_cited_and_the_models_agreement_counts():
    def prefers(word):
        def scorer(messages, choices):
            line = next(l for l in messages[-1]["content"].splitlines() if word in l)
            return [0.0 if line.startswith(f"{c}.") else -5.0 for c in choices]
        return scorer

    question = "What was the score when the Denver Broncos defeated the Carolina Panthers?"
    sentence = "The Denver Broncos defeated the Carolina Panthers 24-10 in Super Bowl 50."
    confidences = {}
    for word in ("24-10", "Gaga"):  # the model agrees with the ranking, then not
        svc = LLMService(ScriptedGenerator([], scorer=prefers(word)), Retriever([LONG]),
                         AskSettings(answer_style="span", min_gate_confidence=0.0, min_span_confidence=0.0))
        answer = svc.ask(question)
        assert answer.mode == "answer" and answer.grounded
        assert answer.text == f"{sentence} [1]"  # the ranker's pick either way
        (cite,) = answer.citations
        assert cite.doc_id == "sb50" and cite.snippet == sentence
        assert "first_token_ms" in answer.timings
        chain = svc._chain()
        spans = candidates(question, chain._pack([LONG], 5, question), "en")
        model_rank = 0 if word == "24-10" else 1
        confidences[word] = span_confidence(span_features(spans, 0.8, model_rank), "en")
    assert SPAN_WEIGHTS["en"].get("agree_llm", 0.0) > 0
    assert confidences["24-10"] > confidences["Gaga"]


def test_span_style_falls_back_to_generation_when_the_model_cannot_score_choices():
    svc = service(["The Denver Broncos [1]."], answer_style="span")  # no scorer
    answer = svc.ask("Who won Super Bowl 50?")
    assert answer.mode == "answer" and answer.text.startswith("The Denver Broncos [1].")


def test_span_answers_still_pass_the_gate_first():
    svc = LLMService(ScriptedGenerator([], scorer=lambda m, c: [0.0] * len(c)), Retriever(),
                     AskSettings(answer_style="span"))
    answer = svc.ask("How tall is the Eiffel tower in Paris?")
    assert answer.mode == "refusal" and answer.refusal_reason is RefusalReason.WEAK_RETRIEVAL


def test_an_unsure_span_pick_is_refused_as_the_models():
    flat = ScriptedGenerator([], scorer=lambda m, c: [0.0] * len(c))  # no preference: probability 1/k
    svc = LLMService(flat, Retriever([LONG]),
                     AskSettings(answer_style="span", min_gate_confidence=0.0, min_span_confidence=0.999,
                                 min_span_quote_confidence=0.999))
    answer = svc.ask("Who sang the national anthem at Super Bowl 50?")
    assert answer.mode == "refusal" and answer.refusal_reason is RefusalReason.MODEL and answer.citations == []


def test_span_is_the_default_style_in_both_languages():
    zh_hit = Hit("ops", "ops#0", "数据目录每天凌晨备份一次。备份保存在对象存储中，保留三十天。", 0.9, title="运维手册")
    scorer = lambda m, c: [0.0] + [-5.0] * (len(c) - 1)  # noqa: E731
    assert AskSettings().answer_style == "span"
    for hit, question, sentence in ((LONG, "Who sang the national anthem at Super Bowl 50?",
                                     "Lady Gaga sang the national anthem."),
                                    (zh_hit, "数据目录多久备份一次？", "数据目录每天凌晨备份一次。")):
        svc = LLMService(ScriptedGenerator([], scorer=scorer), Retriever([hit]),  # no script: writing would fail
                         AskSettings(min_gate_confidence=0.0, min_span_confidence=0.0))
        assert svc.ask(question).text == f"{sentence} [1]"


def test_a_span_answer_leaves_out_the_section_heading_its_chunk_starts_with():
    hit = Hit("notes", "notes#0", "Highlights\nHybrid search combines dense vectors with BM25. Ingest is incremental.",
              0.9, title="Release notes", section="Release notes > Highlights")
    svc = LLMService(ScriptedGenerator([], scorer=lambda m, c: [0.0] + [-5.0] * (len(c) - 1)), Retriever([hit]),
                     AskSettings(min_gate_confidence=0.0, min_span_confidence=0.0))
    answer = svc.ask("What does hybrid search combine?")
    assert answer.text == "Hybrid search combines dense vectors with BM25. [1]"
