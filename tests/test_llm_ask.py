"""The ask chain on the scripted generator: citations, refusals, streaming, history."""

from __future__ import annotations

import pytest

from zhiku.engine.errors import ConfigError, InvalidRequest
from zhiku.engine.llm.fake import ScriptedGenerator
from zhiku.engine.settings import AskSettings
from zhiku.engine.llm.query_rewrite import rrf_hits
from zhiku.engine.llm.abilities import LLMService
from zhiku.engine.llm.templates import REFUSALS
from zhiku.engine.llm.rerank import OverlapReranker, build_reranker
from zhiku.engine.types import Hit

CORPUS = [
    Hit("sb50", "sb50#0", "The Denver Broncos defeated the Carolina Panthers 24-10 to win Super Bowl 50.", 0.9, title="Super Bowl 50"),
    Hit("venue", "venue#0", "Super Bowl 50 was played at Levi's Stadium in Santa Clara, California.", 0.8, title="Super Bowl 50"),
    Hit("paris", "paris#0", "Paris is the capital and largest city of France.", 0.2, title="Paris"),
    Hit("zh", "zh#0", "长城位于中国北方，全长两万多公里。", 0.5, title="长城"),
]


class Retriever:
    """Word-overlap retrieval over CORPUS; records queries."""

    def __init__(self, hits=CORPUS):
        self.hits = hits
        self.queries: list[str] = []

    def __call__(self, query, top_k=10, filters=None):
        self.queries.append(query)
        scorer = OverlapReranker()
        scores = scorer.score(query, [h.text for h in self.hits])
        ranked = [h for s, h in sorted(zip(scores, self.hits), key=lambda p: -p[0]) if s > 0]
        return ranked[:top_k]


def service(script=None, retriever=None, **settings):
    # These tests were written for the fixed gates, whose thresholds they
    # state; the learned gate has its own tests (test_llm_ask_gate_span.py).
    return LLMService(ScriptedGenerator(script), retriever or Retriever(), AskSettings(**{"gate": "fixed", **settings}))


def test_answer_has_checked_citations_with_identity_and_snippet():
    svc = service(["The Denver Broncos won Super Bowl 50 [1]."])
    answer = svc.ask("Who won Super Bowl 50?")
    assert not answer.refused and answer.grounded and answer.mode == "answer"
    # The model's answer, then the cited sentence that supports it, verbatim.
    assert answer.text == (
        "The Denver Broncos won Super Bowl 50 [1].\n\n"
        "“The Denver Broncos defeated the Carolina Panthers 24-10 to win Super Bowl 50.” [1]"
    )
    (cite,) = answer.citations
    assert (cite.n, cite.doc_id, cite.chunk_id, cite.title) == (1, "sb50", "sb50#0", "Super Bowl 50")
    assert "Denver Broncos" in cite.snippet
    assert {"retrieve_ms", "first_token_ms", "total_ms"} <= set(answer.timings)


def test_citation_to_a_missing_source_never_survives():
    answer = service(["Levi's Stadium in Santa Clara [9]."]).ask("Where was Super Bowl 50 played?")
    assert "[9]" not in answer.text
    assert [c.doc_id for c in answer.citations] == ["venue"]
    assert all(c.n <= len(answer.sources) for c in answer.citations)


def test_uncited_answer_is_attributed_to_the_best_overlapping_source():
    answer = service(["It was played at Levi's Stadium."]).ask("Where was Super Bowl 50 played?")
    assert [c.doc_id for c in answer.citations] == ["venue"]
    assert answer.text.endswith("[{}]".format(answer.citations[0].n))


def test_prompt_numbers_the_sources_and_carries_the_question():
    svc = service(["Denver Broncos [1]."])
    svc.ask("Who won Super Bowl 50?")
    (messages, options) = svc.generator.calls[0]
    user = messages[-1]["content"]
    assert "[1] Super Bowl 50" in user and "[2]" in user and "Who won Super Bowl 50?" in user
    assert options.max_tokens == AskSettings().answer_tokens


def test_weak_retrieval_refuses_without_calling_the_model():
    svc = service([])  # an empty script: any model call would fail the test
    answer = svc.ask("How tall is the Eiffel tower in Paris?")
    assert answer.refused and answer.refusal_reason == "weak_retrieval"
    assert answer.text == REFUSALS["en"] and answer.citations == []
    assert svc.ask("Quantum chromodynamics?").refusal_reason == "no_results"


def test_model_refusal_is_reported_in_the_question_language():
    svc = service(["文档中没有找到答案。"])
    answer = svc.ask("长城位于中国哪里？全长多少？")
    assert answer.refused and answer.refusal_reason == "model"
    assert answer.text == REFUSALS["zh"] and answer.language == "zh"
    # The Chinese prompt file was used.
    assert "资料" in svc.generator.calls[0][0][-1]["content"]


@pytest.mark.parametrize("reply", ["The sources do not contain this.", "Not found in the documents.", ""])
def test_model_refusal_phrasings(reply):
    answer = service([reply], quote_mode=False).ask("Who won Super Bowl 50?")
    assert answer.refused and answer.text == REFUSALS["en"]


def test_ungrounded_answers_can_be_refused():
    answer = service(["Bananas are yellow [1]."], refuse_ungrounded=True, quote_mode=False).ask("Who won Super Bowl 50?")
    assert answer.refused and answer.refusal_reason == "ungrounded"
    kept = service(["Bananas are yellow [1]."]).ask("Who won Super Bowl 50?")
    assert not kept.refused and not kept.grounded


def test_stream_yields_sources_then_tokens_then_done():
    svc = service(["The Denver Broncos [1] won."])
    events = list(svc.ask_stream("Who won Super Bowl 50?"))
    kinds = [e.type for e in events]
    assert kinds[0] == "sources" and kinds[-1] == "done" and set(kinds[1:-1]) == {"token"}
    assert "".join(e.data for e in events if e.type == "token") == "The Denver Broncos [1] won."
    assert events[-1].to_dict()["data"]["citations"][0]["doc_id"] == "sb50"


def test_follow_up_is_condensed_with_history_before_retrieval():
    retriever = Retriever()
    svc = service(["Where was Super Bowl 50 played?", "At Levi's Stadium [1]."], retriever)
    history = [
        {"role": "user", "content": "Who won Super Bowl 50?"},
        {"role": "assistant", "content": "The Denver Broncos [1]."},
    ]
    answer = svc.ask("Where was it played?", history=history)
    assert retriever.queries == ["Where was Super Bowl 50 played?"]
    assert answer.standalone_question == "Where was Super Bowl 50 played?"
    assert "Who won Super Bowl 50?" in svc.generator.calls[0][0][-1]["content"]
    assert answer.citations[0].doc_id == "venue"


def test_reranker_reorders_before_packing():
    hits = [CORPUS[2], CORPUS[1], CORPUS[0]]
    svc = LLMService(
        ScriptedGenerator(["Denver Broncos [1]."]),
        lambda q, top_k=10, filters=None: hits,
        AskSettings(min_coverage=0.0),
        reranker=OverlapReranker(),
    )
    answer = svc.ask("Which team defeated the Carolina Panthers?")
    assert answer.sources[0].hit.doc_id == "sb50"
    assert "retrieval_score" in answer.sources[0].hit.metadata


def test_build_reranker_registry():
    assert build_reranker("none") is None
    assert isinstance(build_reranker("fake"), OverlapReranker)
    with pytest.raises(ConfigError):
        build_reranker("cross-encoder")  # no model path
    with pytest.raises(ConfigError):
        build_reranker("bogus")


def test_multi_query_and_hyde_rewrite_the_retrieval_query():
    retriever = Retriever()
    svc = service(["1. Super Bowl 50 winner\n2. Broncos Panthers score", "Denver Broncos [1]."], retriever, query_rewrite="multi-query", rewrite_queries=2)
    svc.ask("Who won Super Bowl 50?")
    assert retriever.queries == ["Who won Super Bowl 50?", "Super Bowl 50 winner", "Broncos Panthers score"]
    retriever = Retriever()
    svc = service(["The Broncos won the game in Santa Clara.", "Denver Broncos [1]."], retriever, query_rewrite="hyde")
    svc.ask("Who won Super Bowl 50?")
    assert retriever.queries == ["Who won Super Bowl 50?\nThe Broncos won the game in Santa Clara."]


def test_rrf_hits_fuses_by_chunk():
    a, b, c = CORPUS[:3]
    assert [h.chunk_id for h in rrf_hits([[a, b], [b, c]], 3)] == [b.chunk_id, a.chunk_id, c.chunk_id]


def test_bad_questions_are_domain_errors():
    with pytest.raises(InvalidRequest):
        service().ask("   ")
    with pytest.raises(ConfigError):
        LLMService(ScriptedGenerator()).ask("no retriever")


def test_parent_sections_are_packed_through_get_document():
    class Doc:
        chunks = [
            Hit("sb50", "sb50#0", CORPUS[0].text, 0.0, title="Super Bowl 50", section="Game", chunk_index=0),
            Hit("sb50", "sb50#1", "Peyton Manning was the Broncos quarterback.", 0.0, section="Game", chunk_index=1),
        ]

    hit = Doc.chunks[0]
    svc = LLMService(
        ScriptedGenerator(["Denver Broncos [1]."]),
        lambda q, top_k=10, filters=None: [hit],
        AskSettings(),
        get_document=lambda doc_id: Doc,
    )
    answer = svc.ask("Who won Super Bowl 50?")
    assert "Peyton Manning" in answer.sources[0].text


class DenseAwareRetriever(Retriever):
    """Also answers mode="dense" with one hit of a set cosine; records those calls."""

    def __init__(self, cosine: float):
        super().__init__()
        self.cosine = cosine
        self.dense_calls: list[tuple[str, object]] = []

    def __call__(self, query, top_k=10, filters=None, mode=None):
        if mode == "dense":
            self.dense_calls.append((query, filters))
            return [Hit("sb50", "sb50#0", CORPUS[0].text, self.cosine)]
        return super().__call__(query, top_k, filters)


def dense_service(cosine, script=None, floors={"en": 0.45}, **settings):
    retriever = DenseAwareRetriever(cosine)
    svc = LLMService(ScriptedGenerator(script), retriever, AskSettings(**{"gate": "fixed", **settings}), dense_floors=floors)
    return svc, retriever


def test_off_topic_question_refused_by_the_embedders_floor_without_the_model():
    svc, retriever = dense_service(0.30, [])  # the words overlap, the meaning does not
    answer = svc.ask("Who won Super Bowl 50?", filters={"lang": "en"})
    assert answer.refused and answer.refusal_reason == "off_topic"
    assert answer.text == REFUSALS["en"]
    assert retriever.dense_calls == [("Who won Super Bowl 50?", {"lang": "en"})]


def test_close_enough_question_passes_the_dense_floor():
    svc, _ = dense_service(0.60, ["The Denver Broncos won Super Bowl 50 [1]."])
    assert not svc.ask("Who won Super Bowl 50?").refused


def test_explicit_min_dense_score_overrides_and_dense_gate_disables():
    svc, _ = dense_service(0.60, [], min_dense_score=0.7)
    assert svc.ask("Who won Super Bowl 50?").refusal_reason == "off_topic"
    svc, retriever = dense_service(0.10, ["The Denver Broncos won Super Bowl 50 [1]."], dense_gate=False)
    assert not svc.ask("Who won Super Bowl 50?").refused and retriever.dense_calls == []


def test_no_floor_for_a_language_means_no_dense_check():
    svc, retriever = dense_service(0.0, ["长城位于中国北方 [1]。"])
    answer = svc.ask("长城位于中国哪里？")
    assert not answer.refused and retriever.dense_calls == []


def test_chinese_questions_have_their_own_coverage_floor():
    # "长城在中国的什么方位" shares 2 of its 6 character bigrams (0.33) with the
    # source: a paraphrase. The Latin floor (0.4) would refuse it; the CJK one does not.
    question = "长城在中国的什么方位？"
    svc = service(["长城位于中国北方 [1]。"])
    assert not svc.ask(question).refused
    svc = service([], min_coverage_cjk=0.4)
    assert svc.ask(question).refusal_reason == "weak_retrieval"


def test_answer_citing_only_an_off_question_source_is_refused_as_unsupported():
    # Source [2] (the venue) matches "who won" far worse than [1]; an answer
    # drawn from it alone is a misreading, so it is refused, not cited.
    question = "Which team did the Denver Broncos defeat to win Super Bowl 50?"
    answer = service(["Santa Clara, California [2]."], quote_mode=False).ask(question)
    assert [s.hit.doc_id for s in answer.sources][:2] == ["sb50", "venue"]
    assert answer.refused and answer.refusal_reason == "unsupported"
    assert answer.citations == [] and answer.text == REFUSALS["en"]


def test_citation_relevance_check_can_be_switched_off():
    question = "Which team did the Denver Broncos defeat to win Super Bowl 50?"
    answer = service(["Santa Clara, California [2]."], min_citation_relevance=0.0).ask(question)
    assert not answer.refused and [c.doc_id for c in answer.citations] == ["venue"]


@pytest.mark.parametrize(
    "reply",
    ["[1] Super Bowl 50", "[1] Super Bowl 50\n[2] Super Bowl 50", "[2]", "Who won Super Bowl 50? [1]"],
)
def test_header_echoes_and_restated_questions_are_not_answers(reply):
    answer = service([reply], quote_mode=False).ask("Who won Super Bowl 50?")
    assert answer.refused and answer.refusal_reason == "model"


def test_yes_no_answers_are_not_mistaken_for_restating_the_question():
    from zhiku.engine.llm.ask import restates

    assert restates("Who won Super Bowl 50? [1]", "Who won Super Bowl 50?")
    assert not restates("Yes, Paris is the capital of France [3].", "Is Paris the capital of France?")
    assert not restates("Paris is the capital of France [3].", "Is Paris the capital of France?")
    assert not restates("巴黎是法国的首都。", "巴黎是法国的首都吗？")
    assert not restates("Denver [1].", "Did Denver or Carolina win?")
    assert not restates("The Broncos [1].", "Who won Super Bowl 50?")
    assert not restates("He did [1].", "Who won Super Bowl 50?")  # no content words: not a restatement
    assert restates("长城全长多少公里", "长城全长多少公里？")


def test_a_title_given_as_the_answer_is_not_a_header_echo():
    from zhiku.engine.llm.ask import echoes_headers
    from zhiku.engine.llm.context import Source

    sources = [Source(1, CORPUS[2], "Paris is the capital and largest city of France.")]
    assert echoes_headers("[1] Paris", sources) and echoes_headers("[1]", sources) and echoes_headers("", sources)
    assert not echoes_headers("Paris [1].", sources)
    assert not echoes_headers("[1] Paris is the capital.", sources)
