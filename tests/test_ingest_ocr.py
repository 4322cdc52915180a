"""OCR of scans and photos: reading order, detection, hostile images, known-bad files.

Unit tests use hand-made line boxes and fake parses; the `integration` ones
run the real PP-OCRv4 models on a few small pages drawn here (a second or
two each), so `make test` covers OCR without a corpus.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from bench import samples
from zhiku.engine.kb import KnowledgeBase
from zhiku.eval import scans
from zhiku.ingest import pipeline
from zhiku.ingest.detect import detect_kind
from zhiku.ingest.errors import FileRejected
from zhiku.ingest.failures import FailureMemory
from zhiku.ingest.ocr import Line, OcrOptions, heavy_first_last, join_lines, load_image, reading_order
from zhiku.ingest.pdf import load_pdf
from zhiku.ingest.pipeline import IngestOptions, ingest_paths

INLINE = IngestOptions(workers=0, optimize=False)


def _line(text: str, x0: float, y0: float, x1: float, h: float = 20) -> Line:
    return Line(text, 0.99, x0, y0, x1, y0 + h)


def _texts(paras: list[list[Line]]) -> list[str]:
    return [" ".join(l.text for l in p) for p in paras]


def test_two_columns_read_left_then_right_then_full_width_footer() -> None:
    lines = [
        _line("R1", 560, 100, 1000), _line("L1", 40, 100, 480), _line("L2", 40, 130, 480),
        _line("R2", 560, 130, 1000), _line("Footer spans both columns", 40, 400, 1000),
        _line("Title across the top", 40, 20, 1000),
    ]
    assert _texts(reading_order(lines)) == ["Title across the top", "L1 L2", "R1 R2", "Footer spans both columns"]


def test_paragraphs_split_at_gaps_and_indents_and_rows_merge() -> None:
    lines = [
        _line("one", 40, 100, 300), _line("two", 40, 125, 300),
        _line("three", 40, 200, 300),  # a blank line above: a new paragraph
        _line("more", 320, 201, 500),  # same row, a second box
        _line("four", 40, 225, 300), _line("five", 90, 250, 300), _line("six", 40, 275, 300),  # indented
    ]
    assert _texts(reading_order(lines)) == ["one two", "three more four", "five six"]


def test_join_lines_cjk_latin_and_hyphens() -> None:
    assert join_lines(["北京是中国的", "首都。", "It is a", "capital."]) == "北京是中国的首都。 It is a capital."
    assert join_lines(["北京是中国的", "首都。"]) == "北京是中国的首都。"
    assert join_lines(["a hyphen-", "ated word", "ends"]) == "a hyphenated word ends"


@pytest.mark.parametrize(
    ("name", "head", "kind"),
    [
        ("scan.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image"),
        ("photo.jpg", b"\xff\xd8\xff\xe0\0\x10JFIF", "image"),
        ("book.tif", b"II*\0\x08\0\0\0", "image"),
        ("book.tiff", b"MM\0*\0\0\0\x08", "image"),
        ("page.webp", b"RIFF\x10\0\0\0WEBPVP8 ", "image"),
        ("page.bmp", b"BM\x36\x00\x0c\x00\x00\x00\x00\x00\x36\x00\x00\x00" + b"\0" * 16, "image"),
        ("notes.txt", b"BMW made cars in 1916 and more text follows here", "text"),
        ("fake.png", b"PK\x03\x04\x14\0", "zip"),  # a zip named .png: refused as a zip, not an image
        ("random.png", b"not an image at all, just words", "text"),
    ],
)
def test_detect_images(name: str, head: bytes, kind: str) -> None:
    assert detect_kind(name, head) == kind


def _png_header(width: int, height: int) -> bytes:
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_huge_image_is_refused_before_decoding() -> None:
    with pytest.raises(FileRejected) as err:
        load_image(_png_header(20_000, 20_000), "huge.png")
    assert err.value.reason_code == "too_large" and "20000 x 20000" in err.value.message


def test_truncated_and_fake_images_are_refused() -> None:
    from PIL import Image

    image = scans.render(["A short line of text."], width=400, height=None, cjk=False)[0].image
    png = scans.image_bytes(image)
    with pytest.raises(FileRejected) as err:
        load_image(png[: len(png) // 2], "cut.png")
    assert err.value.reason_code == "corrupt"
    with pytest.raises(FileRejected) as err:
        load_image(b"GIF89a" + bytes(64), "x.gif")
    assert err.value.reason_code in ("corrupt", "unsupported_type")
    assert Image  # Pillow is a dependency
    with pytest.raises(FileRejected) as err:
        load_image(png, "off.png", OcrOptions(mode="off"))
    assert err.value.reason_code == "no_text"


def test_heavy_files_are_queued_last_in_order() -> None:
    class T:
        def __init__(self, path: str) -> None:
            self.path = path

    tasks = [T("a.pdf"), T("b.txt"), T("c.PNG"), T("d.md"), T("e.tiff")]
    assert [t.path for t in heavy_first_last(tasks)] == ["b.txt", "d.md", "a.pdf", "c.PNG", "e.tiff"]


def test_failure_memory_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state" / "c.failed.json"
    memory = FailureMemory(path)
    memory.record("a.png", "h1", "corrupt", "truncated")
    memory.save()
    again = FailureMemory(path)
    assert again.known("a.png", "h1") is not None and again.known("a.png", "h2") is None
    again.forget("a.png")
    again.save()
    assert FailureMemory(path).known("a.png", "h1") is None
    path.write_text("{not json", encoding="utf-8")
    assert len(FailureMemory(path)) == 0  # damaged: everything gets a fresh try


def _broken_corpus(root: Path) -> Path:
    docs = root / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text("Plain notes about zebras.\n", encoding="utf-8")
    png = _png_header(8, 8)
    (docs / "cut.png").write_bytes(png[:30])
    buf = zipfile.ZipFile(docs / "zip.png", "w")
    buf.writestr("readme.txt", "a zip, not an image")
    buf.close()
    (docs / "bad.json").write_bytes(b'{"unterminated": ')
    return docs


def test_rerun_over_unchanged_broken_files_parses_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _broken_corpus(tmp_path)
    parsed: list[str] = []
    real = pipeline.parse_file

    def counting(task):  # type: ignore[no-untyped-def]
        parsed.append(Path(task.path).name)
        return real(task)

    monkeypatch.setattr(pipeline, "parse_file", counting)
    with KnowledgeBase(tmp_path / "data", collection="t", embed__backend="fake") as kb:
        first = ingest_paths(kb, [docs], INLINE)
        assert (first.new, first.failed, first.known_bad) == (1, 3, 0)
        parsed.clear()
        second = ingest_paths(kb, [docs], INLINE)
        assert parsed == []  # nothing re-parsed: good.txt unchanged, the broken three remembered
        assert (second.unchanged, second.failed, second.known_bad) == (1, 0, 3)
        assert {Path(p.path).name for p in second.errors} == {"cut.png", "zip.png", "bad.json"}
        assert all("failed before" in p.reason for p in second.errors)
        (docs / "bad.json").write_text('{"fixed": "now valid"}', encoding="utf-8")  # changed: parsed again
        third = ingest_paths(kb, [docs], INLINE)
        assert parsed == ["bad.json"] and third.known_bad == 2 and third.new == 1
        parsed.clear()
        retried = ingest_paths(kb, [docs], IngestOptions(workers=0, optimize=False, retry_failed=True))
        assert sorted(parsed) == ["cut.png", "zip.png"] and retried.failed == 2


# -- real OCR on small generated pages ----------------------------------------------------

needs_cjk_font = pytest.mark.skipif(scans.cjk_font_path() is None, reason="fonts-wqy-zenhei is not installed")
ENGLISH = ["Zhiku reads scanned pages offline.", "The second paragraph talks about zebras and tea."]
CHINESE = ["北京是中华人民共和国的首都。", "上海是一座国际化大都市。"]


def _small(paragraphs: list[str], cjk: bool = False) -> object:
    return scans.render(paragraphs, width=900, height=None, size_px=30, cjk=cjk)[0]


@pytest.mark.integration
def test_english_image_reads_back_with_metadata() -> None:
    page = _small(ENGLISH)
    doc = load_image(scans.image_bytes(page.image), "page.png")[0]
    text = "\n".join(e.text for e in doc.elements)
    assert scans.char_error_rate(page.text, text) <= 0.05, text
    assert len(doc.elements) == 2 and all(e.page == 1 and e.confidence for e in doc.elements)
    assert doc.metadata["ocr"] is True and 0.5 < doc.metadata["ocr_confidence"] <= 1


@pytest.mark.integration
@needs_cjk_font
def test_chinese_noisy_tiff_pages_keep_page_numbers() -> None:
    pages = [scans.degrade(_small(CHINESE, cjk=True).image, seed=1), _small(ENGLISH).image]
    doc = load_image(scans.tiff_bytes(pages), "book.tiff")[0]
    assert {e.page for e in doc.elements} == {1, 2}
    first = "".join(e.text for e in doc.elements if e.page == 1)
    assert scans.char_error_rate("".join(CHINESE), first, keep_spaces=False) <= 0.1, first


@pytest.mark.integration
def test_mixed_pdf_keeps_text_layer_and_ocrs_the_scan(tmp_path: Path) -> None:
    text_pdf = samples.pdf_bytes("Contract", [("Terms", ["The tenant pays rent monthly in advance."])])
    data = scans.mixed_pdf(text_pdf, [_small(ENGLISH).image])
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "mixed.pdf").write_bytes(data)
    with KnowledgeBase(tmp_path / "data", collection="t", embed__backend="fake") as kb:
        summary = ingest_paths(kb, [tmp_path / "docs"], INLINE)
        assert summary.new == 1, summary.problems
        chunks = kb.get_document("mixed.pdf").chunks
    text = " ".join(c.text for c in chunks)
    assert "rent monthly" in text and "second paragraph talks about zebras" in text
    meta = chunks[0].metadata
    assert meta["pages"] == [1, 2] and meta["ocr"] is True and meta["ocr_pages"] == [2]
    assert meta["ocr_low_confidence"] is False
    elements = load_pdf(data, "mixed.pdf")[0].elements
    typed = [e for e in elements if e.page == 1]
    assert typed and all(e.confidence is None for e in typed)  # the text layer is kept, not OCR'd
    assert [e.text for e in elements if e.page == 2] == ENGLISH


@pytest.mark.integration
def test_ocr_off_rejects_an_image_only_pdf() -> None:
    data = scans.image_pdf([_small(ENGLISH).image])
    with pytest.raises(FileRejected) as err:
        load_pdf(data, "scan.pdf", OcrOptions(mode="off"))
    assert err.value.reason_code == "no_text" and "ingest.ocr" in err.value.message
    doc = load_pdf(data, "scan.pdf", OcrOptions(max_pages=5))[0]
    assert "zebras" in " ".join(e.text for e in doc.elements)
    with pytest.raises(FileRejected) as err:
        load_pdf(scans.image_pdf([_small(ENGLISH).image] * 3), "long.pdf", OcrOptions(max_pages=2))
    assert err.value.reason_code == "too_large"


@pytest.mark.integration
def test_http_upload_reads_an_image_and_a_scanned_pdf(tmp_path: Path) -> None:
    from api_support import api_client, fake_settings

    image = _small(ENGLISH).image
    files = [("files", ("page.png", scans.image_bytes(image), "image/png")),
             ("files", ("scan.pdf", scans.image_pdf([image]), "application/pdf")),
             ("files", ("cut.png", scans.image_bytes(image)[:100], "image/png"))]
    with api_client(fake_settings(tmp_path)) as client:
        r = client.post("/documents", files=files, data={"collection": "scans"})
        assert r.status_code == 201, r.text
        body = r.json()
        assert sorted(body["doc_ids"]) == ["page.png", "scan.pdf"]
        assert [e["file"] for e in body["errors"]] == ["cut.png"] and body["errors"][0]["code"] == "corrupt"
        hits = client.post("/search", json={"query": "zebras and tea", "collection": "scans"}).json()["hits"]
        assert hits and hits[0]["metadata"]["ocr"] is True and hits[0]["metadata"]["page"] == 1


def test_word_breaks_come_back_from_ink_free_columns() -> None:
    import numpy as np

    from zhiku.ingest.ocr import _empty_columns, _restore_spaces

    ink = np.zeros((40, 200), dtype=bool)
    for x0 in (10, 22, 34, 70, 82):  # "abc" then a 24 px gap, then "de"
        ink[10:30, x0 : x0 + 10] = True
    boxes = [[[x, 10], [x + 10, 10], [x + 10, 30], [x, 30]] for x in (10, 22, 34, 70, 82)]
    line = [[10, 10], [92, 10], [92, 30], [10, 30]]
    assert _restore_spaces("abcde", boxes, *_empty_columns(ink, line)) == "abc de"
    assert _restore_spaces("北京de", boxes[:2] + boxes[3:], *_empty_columns(ink, line)) == "北京de"


def test_ocr_settings_are_validated() -> None:
    from pydantic import ValidationError

    from zhiku.engine.settings import load_settings

    settings = load_settings(ingest={"ocr": "force", "ocr_dpi": 300})
    assert OcrOptions.from_settings(settings) == OcrOptions(mode="force", dpi=300)
    with pytest.raises(ValidationError):
        load_settings(ingest={"ocr_languages": ["fr"]})
    with pytest.raises(ValidationError):
        load_settings(ingest={"ocr": "sometimes"})


def _paging_work(task):  # type: ignore[no-untyped-def]
    # Module level so a spawned worker can import it: three "pages" of 1.5 s each.
    import time

    from zhiku.ingest.ocr import pages_read
    from zhiku.ingest.parse import ParseResult

    if task.path == "first":  # warms the worker up, so the clock below is the book's alone
        return ParseResult(task.path, task.doc_id, kind="text")
    pages_read(0, 3)
    for page in range(1, 4):
        time.sleep(1.5)
        pages_read(page, 3)
    return ParseResult(task.path, task.doc_id, kind="image")


def _no_warm_up() -> None:
    pass  # a warm-up gives the first task a spawn allowance: a loaded machine imports slowly


def test_pool_forwards_pages_and_each_page_restarts_the_timeout() -> None:
    from types import SimpleNamespace

    from zhiku.ingest.pool import ParsePool

    seen: list = []
    with ParsePool(1, timeout_s=2.5, work=_paging_work, warm=_no_warm_up, on_pages=seen.append) as pool:
        tasks = [SimpleNamespace(path=p, doc_id=p) for p in ("first", "book.tiff")]
        results = list(pool.run(tasks))
    assert results[1].ok, results[1].error  # 4.5 s in all, but never 2.5 s without a page
    assert [(p.path, p.done, p.total) for p in seen] == [("book.tiff", n, 3) for n in (0, 1, 2, 3)]


def _ruled_table_pdf(rows: list[list[str]]) -> bytes:
    """One page: a sentence, then a table drawn with ruling lines, one cell per text run."""
    x0, top, width, height = 72, 650, 150, 24
    ops = ["BT /F1 11 Tf 72 720 Td (Prices agreed for the year, as listed below.) Tj ET", "0.5 w"]
    for r in range(len(rows) + 1):
        ops.append(f"{x0} {top - r * height} m {x0 + width * len(rows[0])} {top - r * height} l S")
    for c in range(len(rows[0]) + 1):
        ops.append(f"{x0 + c * width} {top} m {x0 + c * width} {top - height * len(rows)} l S")
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            ops.append(f"BT /F1 10 Tf {x0 + c * width + 6} {top - (r + 1) * height + 8} Td ({cell}) Tj ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_ruled_pdf_table_becomes_a_table_element_and_a_whole_chunk() -> None:
    from zhiku.ingest.chunking import ChunkOptions, chunk_elements

    rows = [["item", "price", "unit"], ["tea", "3", "box"], ["coffee", "4", "bag"]]
    elements = load_pdf(_ruled_table_pdf(rows), "prices.pdf", OcrOptions(mode="off"))[0].elements
    tables = [e for e in elements if e.kind == "table"]
    assert [e.text for e in elements if e.kind == "text"] == ["Prices agreed for the year, as listed below."]
    assert len(tables) == 1 and tables[0].rows == rows and tables[0].page == 1
    pieces = chunk_elements(elements, lambda t: len(t.split()), ChunkOptions(200, 20))
    table = [p for p in pieces if p.kind == "table"]
    assert len(table) == 1 and "item" in table[0].text and "coffee" in table[0].text and table[0].pages == [1]
