"""Pure functions: citation markers, support checks, snippets, context packing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhiku.engine.llm.ask import join_overlapping, parents_from
from zhiku.engine.llm.citations import (
    attribute,
    best_snippet,
    content_tokens,
    find_citations,
    rewrite_markers,
    strip_markers,
)
from zhiku.engine.llm.context import format_sources, pack_sources, truncate_to
from zhiku.engine.types import Hit


@pytest.mark.parametrize(
    ("text", "cited"),
    [
        ("A [1]. B [2][3].", [1, 2, 3]),
        ("A [2, 1] and [1]", [2, 1]),
        ("中文【3】和[4，5]", [3, 4, 5]),
        ("no citations", []),
        ("[x] [ 7 ]", [7]),
    ],
)
def test_find_citations(text, cited):
    assert find_citations(text) == cited


def test_rewrite_markers_drops_unknown_numbers_and_empty_markers():
    assert rewrite_markers("A [1][9]. B [9].", {1}) == "A [1]. B."
    assert rewrite_markers("A [1, 2]", {1, 2}) == "A [1][2]"
    assert strip_markers("A [1] b [2].") == "A b."


def test_content_tokens_drop_stopwords_and_pair_cjk():
    assert content_tokens("What is the capital of France?") == ["capital", "france"]
    assert content_tokens("北京是中国的首都") == ["北京", "京是", "中国", "国的", "的首", "首都"]  # 是中: both stopwords
    assert content_tokens("的了 Paris") == ["paris"]


SOURCES = {
    1: "Berlin is the capital of Germany.",
    2: "The Denver Broncos won Super Bowl 50, beating the Carolina Panthers.",
    3: "Carolina Panthers play in the NFC.",
}


def test_attribute_keeps_a_supported_citation():
    got = attribute("The Denver Broncos won it [2].", "Who won Super Bowl 50?", SOURCES)
    assert got.cited == [2] and got.grounded and got.text == "The Denver Broncos won it [2]."


def test_attribute_moves_a_wrong_citation_to_the_supporting_source():
    got = attribute("The Denver Broncos won [1].", "Who won Super Bowl 50?", SOURCES)
    assert got.cited == [2]
    assert got.text == "The Denver Broncos won [2]."
    assert attribute("Denver Broncos.", "Who won?", SOURCES).text == "Denver Broncos. [2]"


def test_attribute_drops_citations_to_missing_sources_and_adds_the_best():
    got = attribute("Denver Broncos [7].", "Who won Super Bowl 50?", SOURCES)
    assert 7 not in find_citations(got.text)
    assert got.cited == [2]


def test_attribute_leaves_an_unsupported_answer_ungrounded():
    got = attribute("Bananas are yellow [1] [8].", "What colour are bananas?", SOURCES)
    assert not got.grounded and got.cited == [1] and "[8]" not in got.text


def test_best_snippet_picks_the_sentence_that_matches_the_answer():
    text = "Intro sentence here. The Broncos won 24 to 10. Weather was fine."
    assert best_snippet(text, "They won 24 to 10 [1]") == "The Broncos won 24 to 10."
    assert len(best_snippet("x" * 1000, "x", max_chars=50)) == 50


def count_words(text: str) -> int:
    return len(text.split())


def _hit(i: int, text: str, doc: str | None = None, section: str = "") -> Hit:
    return Hit(doc or f"d{i}", f"c{i}", text, 1.0 / (i + 1), title=f"T{i}", section=section, chunk_index=i)


def test_pack_sources_numbers_in_rank_order_within_budget():
    hits = [_hit(i, "word " * 20) for i in range(10)]
    sources = pack_sources(hits, budget_tokens=90, count_tokens=count_words)
    assert [s.n for s in sources] == [1, 2, 3]
    assert [s.hit.chunk_id for s in sources] == ["c0", "c1", "c2"]
    assert format_sources(sources).startswith("[1] T0\nword")


def test_pack_sources_truncates_an_oversized_first_hit_and_respects_max_sources():
    sources = pack_sources([_hit(0, "w " * 500), _hit(1, "short")], 100, count_words)
    assert len(sources) == 1 and count_words(sources[0].text) <= 93
    assert len(pack_sources([_hit(i, "a b") for i in range(9)], 1000, count_words, max_sources=4)) == 4


def test_pack_sources_expands_to_parent_once_per_section():
    hits = [_hit(0, "part one", "doc", "S"), _hit(1, "part two", "doc", "S"), _hit(2, "other", "x")]
    sources = pack_sources(hits, 200, count_words, parent_of=lambda h: "part one part two" if h.doc_id == "doc" else None)
    assert [s.text for s in sources] == ["part one part two", "other"]


def test_pack_sources_falls_back_to_the_chunk_when_the_parent_is_too_big():
    sources = pack_sources([_hit(0, "small chunk")], 30, count_words, parent_of=lambda h: "big " * 100)
    assert sources[0].text == "small chunk"


@given(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=12), st.integers(20, 300))
def test_pack_sources_never_exceeds_the_budget(texts, budget):
    hits = [_hit(i, t) for i, t in enumerate(texts)]
    sources = pack_sources(hits, budget, count_words)
    assert sum(count_words(s.text) + 8 for s in sources) <= budget + 2  # " …" on a truncated first source
    assert [s.n for s in sources] == list(range(1, len(sources) + 1))


def test_truncate_to_keeps_a_prefix():
    assert truncate_to("a b c d e f", 3, count_words).startswith("a b")
    assert truncate_to("short", 10, count_words) == "short"


def test_join_overlapping_removes_repeated_prefixes():
    assert join_overlapping(["the cat sat on", "sat on the mat"]) == "the cat sat on the mat"
    assert join_overlapping(["abc", "xyz"]) == "abc xyz"


class _Doc:
    def __init__(self, chunks):
        self.chunks = chunks


def test_parents_from_joins_the_section_or_neighbours():
    chunks = [_hit(i, f"t{i}", "doc", "A" if i < 2 else "") for i in range(5)]
    for i, c in enumerate(chunks):
        c.chunk_index = i
    parent_of = parents_from(lambda doc_id: _Doc(chunks))
    assert parent_of(chunks[0]) == "t0 t1"
    assert parent_of(chunks[3]) == "t2 t3 t4"

    def missing(doc_id):
        raise KeyError(doc_id)

    assert parents_from(missing)(chunks[0]) is None


def test_compress_keeps_the_sentences_nearest_the_question_in_order():
    from zhiku.engine.llm.context import compress

    text = "Intro about cats. The Broncos won Super Bowl 50. They beat the Panthers. Weather was mild. Tickets sold out."
    got = compress(text, "Who won Super Bowl 50?", 12, count_words)
    assert got.startswith("The Broncos won Super Bowl 50.")
    assert count_words(got) <= 12
    assert compress(text, "Who won Super Bowl 50?", 1000, count_words) == text
    # Non-adjacent sentences are joined with an ellipsis.
    assert "…" in compress("A cats. B dogs. C cats.", "cats", 5, count_words)


def test_pack_sources_compresses_each_source_to_its_share():
    hits = [_hit(i, "Filler sentence here. The winner is Denver. More filler text follows.") for i in range(3)]
    sources = pack_sources(hits, 100, count_words, question="Who is the winner?", source_tokens=10)
    assert len(sources) == 3
    assert all(s.text.startswith("The winner is Denver.") and count_words(s.text) <= 10 for s in sources)


def test_compress_weighs_rare_question_terms_over_common_ones():
    from zhiku.engine.llm.context import compress

    # "Tesla" is in every sentence and "feed" in two; "pigeons" only in the one
    # that answers. Unweighted, the first sentence ties with it and wins.
    text = ("Tesla would feed his workers at noon. Tesla did feed the lab cats. "
            "Tesla was born in Smiljan. Tesla fed the pigeons in the park every day.")
    got = compress(text, "Where did Tesla feed the pigeons?", 10, count_words)
    assert got == "Tesla fed the pigeons in the park every day."


def test_compress_keeps_the_matching_clause_of_an_over_long_sentence():
    from zhiku.engine.llm.context import compress

    text = ("After a long career in several countries, with many patents filed and lost, "
            "and after the lab burned down, he finally settled in Colorado Springs.")
    got = compress(text, "Where did he settle?", 8, count_words)
    assert "settled in Colorado Springs." in got and count_words(got) <= 8


def test_term_weights_are_idf_over_the_sentences_of_all_texts():
    from zhiku.engine.llm.context import term_weights

    weights = term_weights("Tesla pigeons", ["Tesla a. Tesla b.", "Tesla fed pigeons."])
    assert weights["pigeon"] > weights["tesla"] > 0  # BM25 terms are stemmed


def test_pack_sources_gives_the_first_source_its_own_share():
    body = "Filler sentence here. The winner is Denver. More filler text follows. Extra words close it."
    hits = [_hit(i, body) for i in range(3)]
    sources = pack_sources(hits, 100, count_words, question="Who is the winner?", source_tokens=8, first_source_tokens=12)
    assert len(sources) == 3
    assert 8 < count_words(sources[0].text) <= 12
    assert all(count_words(s.text) <= 8 and "winner" in s.text for s in sources[1:])


def test_attribute_refuses_to_cite_sources_that_miss_the_question():
    sources = {1: "The Broncos won Super Bowl 50.", 2: "The stadium is in Santa Clara."}
    relevance = {1: 1.0, 2: 0.2}
    off = attribute("It is in Santa Clara [2].", "Who won Super Bowl 50?", sources, relevance=relevance, min_relevance=0.6)
    assert off.misattributed and off.cited == [] and "[2]" not in off.text
    on = attribute("The Broncos won [1].", "Who won Super Bowl 50?", sources, relevance=relevance, min_relevance=0.6)
    assert not on.misattributed and on.cited == [1]
    # Re-cited to a relevant source that supports the answer, rather than refused.
    moved = attribute("The Broncos won [2].", "Who won Super Bowl 50?", sources, relevance=relevance, min_relevance=0.6)
    assert moved.cited == [1] and "[1]" in moved.text and not moved.misattributed
    # Uncited, and supported only by the source that misses the question: a misreading too.
    uncited = attribute("It is in Santa Clara.", "Who won Super Bowl 50?", sources, relevance=relevance, min_relevance=0.6)
    assert uncited.misattributed and uncited.cited == []
    # Supported nowhere: kept as ungrounded, not misattributed.
    nowhere = attribute("It was sunny.", "Who won Super Bowl 50?", sources, relevance=relevance, min_relevance=0.6)
    assert not nowhere.misattributed and not nowhere.grounded
    assert attribute("It is in Santa Clara [2].", "Who won?", sources).cited == [2]  # no relevance: old rule


def test_compress_picks_the_answering_chinese_sentence():
    from zhiku.engine.llm.context import compress

    text = "长城是中国古代的军事工程。长城全长两万多公里。每年有很多游客参观长城。"
    got = compress(text, "长城全长多少公里？", 12, len)  # one token per character
    assert got == "长城全长两万多公里。"


def test_compress_cuts_an_over_long_best_passage_instead_of_dropping_it():
    from zhiku.engine.llm.context import compress

    text = "Short filler. The winner of the final was Denver after a long and hard season. Other."
    got = compress(text, "Who was the winner of the final?", 6, count_words)
    assert got.startswith("The winner of the final") and count_words(got) <= 6


def test_clauses_do_not_split_numbers():
    from zhiku.engine.llm.context import compress

    text = "The basin covers 7,000,000 square kilometres, of which 5,500,000 are rainforest, across nine nations."
    got = compress(text, "How many square kilometres does the basin cover?", 8, count_words)
    assert "7,000,000 square kilometres," in got


def test_truncate_to_counts_its_ellipsis():
    assert count_words(truncate_to("a b c d e f", 3, count_words)) <= 3


def test_sentences_do_not_end_at_initials_or_abbreviations():
    from zhiku.engine.llm.citations import split_sentences

    # A span answer is a whole sentence: split at "H." it lost the name it was asked for.
    assert split_sentences("现任主席是约翰·海克特·麦克阿瑟（John H. McArthur）教授。他任职十年。") == [
        "现任主席是约翰·海克特·麦克阿瑟（John H. McArthur）教授。", "他任职十年。"]
    assert split_sentences("John F. Kennedy met Dr. Smith in the U.S. Army. They spoke. Did it help? Yes!") == [
        "John F. Kennedy met Dr. Smith in the U.S. Army.", "They spoke.", "Did it help?", "Yes!"]
