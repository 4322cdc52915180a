"""Table tests for query analysis, the ranking rules and the adaptive leg weights (pure functions)."""

from __future__ import annotations

import pytest

from zhiku.engine import ranking
from zhiku.engine.adaptive import IDENTIFIER_SCALE, dense_weight
from zhiku.engine.query import analyse, contains_phrase, detect_language, holds_all, identifiers, names, phrases
from zhiku.engine.tokenize import tokenize


@pytest.mark.parametrize(
    "text, language",
    [
        ("what formats does zhiku support", "en"),
        ("zhiku 支持哪些文件格式？", "zh"),
        ("档案编号QX000ZR", "zh"),
        ("ERR-404", "en"),
        ("", "en"),
        ("The capital is 北京 according to the article about the city", "en"),
    ],
)
def test_language(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize(
    "query, expected",
    [
        ("archive code QX000ZR", ("qx000zr",)),
        ("error ERR-404 on boot", ("err-404",)),
        ("order number 14802999", ("14802999",)),
        ("section 32-296 of the building code", ("32-296",)),
        ("档案编号QX000ZR的记录", ("qx000zr",)),
        ("ＱＸ０００ＺＲ", ("qx000zr",)),  # full-width forms fold to ASCII
        ("top 10 rivers", ()),  # two digits alone are a count, not an identifier
        ("who wrote Hamlet", ()),
        ("ISO9001 and ISO9001 again", ("iso9001",)),  # no repeats
        ("version v2.1.3 released in 2019.", ("v2.1.3", "2019")),  # trailing dot is punctuation
    ],
)
def test_identifiers(query: str, expected: tuple[str, ...]) -> None:
    assert identifiers(query) == expected


@pytest.mark.parametrize(
    "query, language, expected",
    [
        ("who is Lucian Ferreira", "en", ("lucian ferreira",)),
        ("Who is Lucian Ferreira?", "en", ("lucian ferreira",)),  # the question word is no part of it
        ("Where did Jean-Pierre Rampal study?", "en", ("jean-pierre rampal",)),
        ("Marta Halvorsen's report and Yara Mbeki", "en", ("marta halvorsen", "yara mbeki")),
        ("What did Tesla build?", "en", ()),  # one capitalised word is a topic as often as a name
        ("In What Year Was It Built", "en", ()),  # Title Case function words end a run
        ("ERR-404 on boot", "en", ()),
        ("赵国芳是谁", "zh", ("赵国芳",)),  # adjacent name tags joined (赵国 + 芳)
        ("周勇伟是谁", "zh", ("周勇伟",)),
        ("混合检索是什么", "zh", ()),
    ],
)
def test_names(query: str, language: str, expected: tuple[str, ...]) -> None:
    assert names(query, language) == expected
    assert analyse(query).exact == identifiers(query) + expected


@pytest.mark.parametrize(
    "query, expected_phrases, legs_text",
    [
        ('"hybrid search" with qdrant', ("hybrid search",), "hybrid search with qdrant"),
        ("“Hybrid  Search” engine", ("hybrid search",), "Hybrid  Search engine"),
        ("「向量检索」是什么", ("向量检索",), "向量检索是什么"),
        ('empty "" quotes', (), 'empty "" quotes'),
        ('"a b" and "c d"', ("a b", "c d"), "a b and c d"),
        ("no quotes at all", (), "no quotes at all"),
    ],
)
def test_phrases_and_the_text_the_legs_search(query: str, expected_phrases: tuple[str, ...], legs_text: str) -> None:
    assert phrases(query) == expected_phrases
    analysis = analyse(query)
    assert analysis.phrases == expected_phrases and analysis.text == legs_text


@pytest.mark.parametrize(
    "text, phrase, found",
    [
        ("Hybrid\nsearch fuses two legs.", "hybrid search", True),
        ("Search that is hybrid.", "hybrid search", False),
        ("混合检索融合两条腿。", "混合检索", True),
    ],
)
def test_contains_phrase(text: str, phrase: str, found: bool) -> None:
    assert contains_phrase(text, phrase) is found


@pytest.mark.parametrize(
    "text, wanted, held",
    [
        ("The archive code is QX000ZR.", ("qx000zr",), True),
        ("The archive code is QX000ZRA.", ("qx000zr",), False),  # a longer code is another code
        ("The archive code is QX003ZR.", ("qx000zr",), False),
        ("编号QX000ZR，错误ERR-404", ("qx000zr", "err-404"), True),
        ("编号QX000ZR", ("qx000zr", "err-404"), False),
        ("Lucian Ferreira joined.", ("lucian ferreira",), True),
        ("LUCIAN\nFERREIRA joined", ("lucian ferreira",), True),  # case and line breaks do not decide
        ("Lucian Ferreiras joined", ("lucian ferreira",), False),  # whole words only
        ("Ferreira, Lucian", ("lucian ferreira",), False),  # in order
        ("。赵国芳以高级档案员的身份加入了档案室。", ("赵国芳",), True),  # CJK: a substring
        ("赵国伟以高级档案员的身份加入了档案室。", ("赵国芳",), False),
    ],
)
def test_holds_all(text: str, wanted: tuple[str, ...], held: bool) -> None:
    assert holds_all(text, wanted) is held


def _payloads(**texts: str) -> dict[str, dict[str, str]]:
    return {pid: {"doc_id": pid.split("_")[0], "text": text, "title": ""} for pid, text in texts.items()}


def test_the_one_document_holding_the_identifier_ranks_first() -> None:
    payloads = _payloads(a="code QX003ZR", b="long text ... code QX000ZR ...", c="code QX000ZK")
    ranked = [("a", 0.9), ("c", 0.8), ("b", 0.2)]
    assert [pid for pid, _ in ranking.promote(ranked, ranking.exact_holders([pid for pid, _ in ranked], payloads, ("qx000zr",)))] == ["b", "a", "c"]


@pytest.mark.parametrize(
    "texts, expected",
    [
        # two documents hold it: no guarantee, order kept
        ({"a": "QX000ZR here", "b": "also QX000ZR", "c": "none"}, ["c", "a", "b"]),
        # nobody holds it
        ({"a": "x", "b": "y", "c": "z"}, ["c", "a", "b"]),
        # two chunks of one document hold it: both go first, in their order
        ({"a_1": "QX000ZR", "b": "none", "a_2": "QX000ZR too"}, ["a_2", "a_1", "b"]),
    ],
)
def test_exact_match_only_when_one_document_alone_holds_the_identifiers(
    texts: dict[str, str], expected: list[str]
) -> None:
    payloads = _payloads(**texts)
    order = {"c": 0, "a_2": 0, "a": 1, "a_1": 1, "b": 2}
    ranked = sorted(((pid, 1.0 - order[pid] / 10) for pid in texts), key=lambda kv: -kv[1])
    assert [pid for pid, _ in ranking.promote(ranked, ranking.exact_holders([pid for pid, _ in ranked], payloads, ("qx000zr",)))] == expected


def test_a_holder_outside_the_ranking_enters_it_first() -> None:
    payloads = _payloads(a="code QX003ZR", b="code QX000ZK", z="long text ... code QX000ZR ...")
    ranked = [("a", 0.9), ("b", 0.8)]
    promoted = ranking.promote(ranked, ranking.exact_holders(["z", "a"], payloads, ("qx000zr",)))
    assert promoted == [("z", 0.9), ("a", 0.9), ("b", 0.8)]
    # A candidate that was not read cannot be checked, so it is never promoted.
    assert ranking.promote(ranked, ranking.exact_holders(["unread"], payloads, ("qx000zr",))) == ranked


def test_phrases_drop_hits_without_them_and_unknown_ids() -> None:
    payloads = _payloads(a="fast hybrid search here", b="search that is hybrid")
    ranked = [("b", 0.9), ("a", 0.5), ("zz", 0.4)]
    assert ranking.keep_phrases(ranked, payloads, ("hybrid search",)) == [("a", 0.5)]
    assert ranking.keep_phrases(ranked, payloads, ()) == ranked


def test_title_boost_reorders_close_calls_only() -> None:
    payloads = {
        "a": {"title": "Apollo program", "text": ""},
        "b": {"title": "Space race", "text": ""},
        "c": {"title": "", "text": ""},
    }
    terms = tokenize("apollo program budget")
    boosted = ranking.boost_titles([("b", 1.0), ("a", 0.95), ("c", 0.5)], payloads, terms, tokenize, 0.1)
    assert [pid for pid, _ in boosted] == ["a", "b", "c"]
    far = ranking.boost_titles([("b", 1.0), ("a", 0.5)], payloads, terms, tokenize, 0.1)
    assert [pid for pid, _ in far] == ["b", "a"]
    assert ranking.boost_titles([("b", 1.0)], payloads, terms, tokenize, 0.0) == [("b", 1.0)]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("who founded the city", 0.4),
        ("archive code QX000ZR", 0.4 * IDENTIFIER_SCALE),
        ("这座城市是谁建立的", 0.4),
        ("订单号14802999", 0.4 * IDENTIFIER_SCALE),
    ],
)
def test_dense_weight(query: str, expected: float) -> None:
    assert dense_weight(0.4, analyse(query)) == pytest.approx(expected)
