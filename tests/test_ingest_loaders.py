"""Each loader on a small real document, in-process with the network blocked."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bench import samples
from zhiku.ingest import offline
from zhiku.ingest.loaders import LOADERS
from zhiku.ingest.parse import ParseTask, parse_file
from zhiku.ingest.chunking import ChunkOptions

SECTIONS = [("Setup", ["Install the package and run it."]), ("Usage", ["Search with hybrid retrieval."])]


def _kinds(docs):  # type: ignore[no-untyped-def]
    return [(e.kind, e.text.strip()) for e in docs[0].elements]


def test_plain_text_uses_the_packaged_spacy_model_offline() -> None:
    offline.load_spacy.cache_clear()
    text = "INTRODUCTION\n\nThis paragraph explains what the tool does and why it matters.\n"
    docs = LOADERS["text"](text.encode(), "a.txt")
    assert ("title", "INTRODUCTION") in _kinds(docs)
    assert offline.load_spacy.cache_info().misses == 1  # unstructured's NLP came from our shim
    from unstructured.nlp import tokenize

    assert tokenize._get_nlp is offline.load_spacy


def test_markdown_headings_lists_and_tables() -> None:
    md = "# Top\n\nIntro.\n\n## Sub\n\n- one\n- two\n\n| k | v |\n|---|---|\n| a | 1 |\n"
    docs = LOADERS["markdown"](md.encode(), "a.md")
    kinds = _kinds(docs)
    assert kinds[:2] == [("title", "Top"), ("text", "Intro.")]
    assert ("list", "one") in kinds
    table = [e for e in docs[0].elements if e.kind == "table"][0]
    assert table.rows == [["k", "v"], ["a", "1"]]
    assert [e.level for e in docs[0].elements if e.kind == "title"] == [0, 1]


def test_html_and_pdf_and_docx(tmp_path: Path) -> None:
    html = LOADERS["html"](samples.html_page("Doc", SECTIONS).encode(), "a.html")
    assert ("title", "Setup") in _kinds(html)
    pdf = LOADERS["pdf"](samples.pdf_bytes("Doc", SECTIONS), "a.pdf")
    assert pdf[0].title == "Doc" and pdf[0].metadata["pages"] == 1
    assert all(e.page == 1 for e in pdf[0].elements)
    samples.write_docx(tmp_path / "a.docx", "Doc", SECTIONS, [["h1", "h2"], ["x", "y"]])
    docx = LOADERS["docx"]((tmp_path / "a.docx").read_bytes(), "a.docx")
    assert ("title", "Usage") in _kinds(docx)
    assert [e.rows for e in docx[0].elements if e.kind == "table"] == [[["h1", "h2"], ["x", "y"]]]


def test_pptx_xlsx_email_csv_json() -> None:
    from openpyxl import Workbook
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Plan"
    slide.placeholders[1].text = "Ship it"
    buf = io.BytesIO()
    deck.save(buf)
    assert ("title", "Plan") in _kinds(LOADERS["pptx"](buf.getvalue(), "a.pptx"))

    book = Workbook()
    book.active.title = "Costs"
    book.active.append(["item", "eur"])
    book.active.append(["tea", 3])
    buf = io.BytesIO()
    book.save(buf)
    xlsx = LOADERS["xlsx"](buf.getvalue(), "a.xlsx")[0].elements
    assert xlsx[0].kind == "title" and xlsx[0].text == "Costs"
    assert xlsx[1].rows == [["item", "eur"], ["tea", "3"]]

    eml = b"From: a@example.com\nTo: b@example.com\nSubject: Budget\n\nPlease approve.\n"
    email = LOADERS["email"](eml, "m.eml")
    assert email[0].title == "Budget" and "Please approve." in " ".join(e.text for e in email[0].elements)

    csv_doc = LOADERS["csv"](b"a,b\n1,2\n", "t.csv")[0]
    assert csv_doc.elements[0].rows == [["a", "b"], ["1", "2"]]
    json_doc = LOADERS["json"](b'{"a": {"b": "deep"}, "n": [1, 2]}', "c.json")[0]
    assert json_doc.elements[0].text == "a.b: deep\nn: 1\nn: 2"


def test_beir_corpus_records_are_documents() -> None:
    data = b'{"_id": "d1", "title": "One", "text": "first"}\n{"_id": "d2", "title": "Two", "text": "second"}\n'
    docs = LOADERS["jsonl"](data, "corpus.jsonl")
    assert [(d.key, d.title) for d in docs] == [("d1", "One"), ("d2", "Two")]
    assert docs[0].content_hash != docs[1].content_hash


def test_parse_file_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "gbk.txt"
    path.write_bytes("第一章\n\n这是一个使用国标编码的中文文件，用来测试编码识别。".encode("gbk"))
    task = ParseTask(str(path), "gbk.txt", {"path": str(path)}, {"team": "x"}, ChunkOptions(50, 5), ("words",), 2**20)
    result = parse_file(task)
    assert result.ok, result.error
    (doc,) = result.docs
    assert doc.metadata["encoding"] == "gb18030" and doc.metadata["language"] == "zh"
    assert doc.metadata["team"] == "x" and doc.pieces and "国标编码" in doc.pieces[0].text


@pytest.mark.parametrize("suffix", [".txt", ".md", ".html", ".pdf", ".docx", ".pptx", ".xlsx", ".csv", ".eml", ".json", ".jsonl"])
def test_garbage_under_any_name_is_refused_with_a_reason(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(b"\x00\x01\x02garbage\xff\xfe" * 50)
    result = parse_file(ParseTask(str(path), path.name, {}, {}, ChunkOptions(), ("words",), 2**20))
    assert (result.ok, result.code) == (False, "binary")
    assert "binary content" in result.error
