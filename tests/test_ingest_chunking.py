"""Structure-aware chunking: sections, whole tables, grouped lists, size bounds."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from zhiku.ingest.chunking import ChunkOptions, chunk_elements, split_sections, table_texts
from zhiku.ingest.model import Element
from zhiku.ingest.parse import guess_language, token_counter

count = token_counter(("words",))


def test_titles_give_section_paths_and_parents() -> None:
    els = [
        Element("title", "Guide", 0), Element("text", "intro"),
        Element("title", "Install", 1), Element("text", "pip install"),
        Element("title", "Linux", 2), Element("text", "apt"),
        Element("title", "Usage", 1), Element("text", "run it"),
    ]
    pieces = chunk_elements(els, count, ChunkOptions(50, 5))
    assert [(p.section, p.parent_section) for p in pieces] == [
        ("Guide", ""), ("Guide > Install", "Guide"),
        ("Guide > Install > Linux", "Guide > Install"), ("Guide > Usage", "Guide"),
    ]
    assert pieces[2].text == "Linux\napt"  # the heading leads its section's first piece
    assert [p.section_index for p in pieces] == [0, 1, 2, 3]


def test_a_heading_closed_by_a_sibling_keeps_its_words() -> None:
    els = [Element("title", "Lonely", 0), Element("title", "Next", 0), Element("text", "body")]
    text = " ".join(p.text for p in chunk_elements(els, count, ChunkOptions(50, 5)))
    assert "Lonely" in text and "body" in text


def test_small_table_stays_whole_with_header() -> None:
    rows = [["name", "qty"], ["apple", "3"], ["pear", "5"]]
    els = [Element("title", "Stock", 0), Element("table", "", rows=rows)]
    (piece,) = chunk_elements(els, count, ChunkOptions(50, 5))
    assert piece.kind == "table"
    assert piece.text == "Stock\n| name | qty |\n| apple | 3 |\n| pear | 5 |"


def test_large_table_splits_between_rows_with_header_repeated() -> None:
    rows = [["id", "value"]] + [[f"k{i}", f"v{i}"] for i in range(60)]
    parts = table_texts(rows, count, 30)
    assert len(parts) > 2
    for part in parts:
        assert part.splitlines()[0] == "| id | value |"
        assert count(part) <= 30
    body = [line for part in parts for line in part.splitlines()[1:]]
    assert body == [f"| k{i} | v{i} |" for i in range(60)]  # every row once, in order


def test_list_items_are_grouped() -> None:
    els = [Element("text", "Steps:"), Element("list", "one"), Element("list", "two"), Element("list", "three")]
    (piece,) = chunk_elements(els, count, ChunkOptions(50, 5))
    assert piece.text == "Steps:\n\n- one\n- two\n- three"


def test_chinese_splits_at_sentence_ends() -> None:
    text = "这是第一句话。" * 40 + "最后一句！"
    pieces = chunk_elements([Element("text", text)], count, ChunkOptions(40, 0))
    assert len(pieces) > 1
    assert all(p.text.endswith(("。", "！")) for p in pieces)
    assert all(count(p.text) <= 40 for p in pieces)


def test_pages_follow_the_text() -> None:
    els = [Element("text", "alpha " * 30, page=1), Element("text", "beta " * 30, page=2)]
    pieces = chunk_elements(els, count, ChunkOptions(32, 0))
    assert pieces[0].pages == [1] and pieces[-1].pages == [2]


def test_sections_skip_empty_headings_only_when_nested() -> None:
    sections = split_sections([Element("title", "A", 0), Element("title", "B", 1), Element("text", "x")])
    assert [s.path for s in sections] == [["A", "B"]]


def test_language_guess() -> None:
    assert guess_language("这是一个中文句子，讲的是检索。") == "zh"
    assert guess_language("This is an English sentence about retrieval.") == "en"
    assert guess_language("これは日本語の文です。") == "ja"
    assert guess_language("12345 !!!") == "und"


words = st.text(alphabet="abcdefghij", min_size=1, max_size=8)
paragraphs = st.lists(st.lists(words, min_size=1, max_size=60).map(" ".join), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(paragraphs, st.integers(16, 64), st.integers(0, 8))
def test_pieces_are_bounded_and_lose_no_words(paras: list[str], size: int, overlap: int) -> None:
    els = [Element("title", "Head", 0)] + [Element("text", p) for p in paras]
    options = ChunkOptions(size, overlap)
    pieces = chunk_elements(els, count, options)
    assert all(count(p.text) <= size for p in pieces)
    seen = set(re.findall(r"\w+", " ".join(p.text for p in pieces)))
    assert set(re.findall(r"\w+", " ".join(paras))) <= seen
    assert chunk_elements(els, count, options) == pieces  # deterministic
