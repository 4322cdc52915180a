"""A hostile corpus: every bad file reported with a reason, every good file ingested.

The corpus is generated into tmp_path at run time (nothing big is committed)
and parsed by the real process pool, so crashes and hangs are contained the
way they are in production.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest

from zhiku.engine.kb import KnowledgeBase
from bench import samples
from zhiku.ingest.pipeline import IngestOptions, ingest_paths

SECTIONS = [("Overview", ["The hostile corpus test checks robust parsing of odd files."]),
            ("Details", ["Every good file must be ingested and every bad one reported."])]
GBK_TEXT = "中文编码测试：这个文件使用国标编码保存，检索系统应该正确识别它的内容。"


def _docx_bytes(path: Path) -> bytes:
    samples.write_docx(path, "Quarterly report", SECTIONS, [["region", "sales"], ["north", "10"]])
    return path.read_bytes()


def _zip_bomb(path: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("word/document.xml", "w") as member:
            block = b"\0" * 2**20
            for _ in range(300):  # 300 MiB of zeros in a few hundred KiB
                member.write(block)


def _encrypted_pdf(path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(samples.pdf_bytes("Secret", SECTIONS))).pages:
        writer.add_page(page)
    writer.encrypt(user_password="s3cret", algorithm="RC4-128")
    with path.open("wb") as fh:
        writer.write(fh)


def _pptx(path: Path) -> None:
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Roadmap slide"
    slide.placeholders[1].text = "Ship the ingest pipeline"
    deck.save(str(path))


def _xlsx(path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Budget"
    for row in [("item", "cost"), ("servers", 100), ("coffee", 20)]:
        sheet.append(row)
    book.save(str(path))


def build_corpus(root: Path) -> tuple[set[str], dict[str, str]]:
    """Write the corpus; returns (good file names, bad file name -> expected code)."""
    root.mkdir()
    (root / "sub").mkdir()
    files = {
        "guide.md": "# Guide\n\nA markdown guide.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        "page.html": samples.html_page("Web page", SECTIONS),
        "notes.txt": "Ordinary notes in plain text.\n",
        "data.csv": "name,value\nalpha,1\nbeta,2\n",
        "conf.json": json.dumps({"service": {"name": "zhiku", "port": 8000}}),
        "items.jsonl": '{"_id": "item-1", "text": "first record"}\n',
        "mail.eml": "From: a@example.com\nTo: b@example.com\nSubject: Meeting notes\n\nWe agreed to ship.\n",
        "中文文件名.md": "# 标题\n\n中文内容的文档。\n",
        "utf16.txt": "UTF-16 text with a BOM.".encode("utf-16"),
        "gbk.txt": GBK_TEXT.encode("gbk"),
        "broken-utf8.txt": ("Mostly valid – UTF-8 text 中文. " * 50).encode() + b"\xe4\xb8" + b" tail",
        "report.pdf": samples.pdf_bytes("Annual report", SECTIONS),
        "pdf-named.txt": samples.pdf_bytes("Misnamed PDF", SECTIONS),  # content wins over extension
        "text-named.docx": "This is plain text saved with a .docx name.\n",
    }
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (root / name).write_bytes(data)
    (root / "report.docx").write_bytes(_docx_bytes(root / "report.docx"))
    _pptx(root / "deck.pptx")
    _xlsx(root / "budget.xlsx")
    good = set(files) | {"report.docx", "deck.pptx", "budget.xlsx"}

    bad: dict[str, str] = {}

    def put(name: str, data: bytes, code: str) -> None:
        (root / name).write_bytes(data)
        bad[name] = code

    pdf = samples.pdf_bytes("Truncated", SECTIONS)
    put("empty.txt", b"", "empty")
    put("blank.md", b"   \n\n\t\n", "no_text")
    put("binary.txt", b"\x7fELF\x02\x01\x01" + os.urandom(4096), "binary")
    put("nul-bytes.txt", b"text\0with\0nuls\0" * 100, "binary")
    put("image.pdf", b"\x89PNG\r\n\x1a\n" + os.urandom(512), "corrupt")  # an image by content: OCR refuses its bytes
    put("legacy.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1024, "unsupported_type")
    put("truncated.pdf", pdf[: len(pdf) // 3], "corrupt")
    put("no-text.pdf", samples.pdf_bytes("", []).replace(b"() Tj", b""), "no_text")
    docx = (root / "report.docx").read_bytes()
    put("truncated.docx", docx[: len(docx) // 2], "corrupt")
    put("not-office.docx", _zip_bytes({"readme.txt": b"just a zip"}), "unsupported_type")
    put("bad.json", b'{"unterminated": ', "corrupt")
    put("bad.jsonl", b'{"_id": "x", "text": "ok"}\n{not json}\n', "corrupt")
    put("scripts-only.html", b"<html><head><script>var x=1;</script></head><body></body></html>", "no_text")
    put("huge.txt", b"", "too_large")
    with (root / "huge.txt").open("wb") as fh:  # 50 MB, over the 20 MiB default cap
        line = b"a line of text that repeats to make a very large file\n"
        fh.write(line * (50 * 2**20 // len(line)))
    _zip_bomb(root / "bomb.docx")
    bad["bomb.docx"] = "zip_bomb"
    _encrypted_pdf(root / "secret.pdf")
    bad["secret.pdf"] = "encrypted"
    deep = b"<html><body>" + b"<div>" * 100_000 + b"deep text" + b"</div>" * 100_000 + b"</body></html>"
    (root / "deep.html").write_bytes(deep)
    os.symlink("self-loop.txt", root / "self-loop.txt")
    bad["self-loop.txt"] = "symlink_loop"
    os.symlink("..", root / "sub" / "loop")
    bad["loop"] = "symlink_loop"
    os.symlink("missing.txt", root / "dangling.txt")
    bad["dangling.txt"] = "broken_symlink"
    os.mkfifo(root / "pipe.txt")
    bad["pipe.txt"] = "not_a_file"
    locked = root / "locked.txt"
    locked.write_text("readable only by root\n")
    locked.chmod(0)
    if os.geteuid() == 0:
        good.add("locked.txt")  # root reads anything: then it is simply a good file
    else:
        bad["locked.txt"] = "unreadable"
    return good, bad


def _zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.integration
@pytest.mark.slow
def test_hostile_corpus(tmp_path: Path) -> None:
    good, bad = build_corpus(tmp_path / "hostile")
    assert len(good) >= 15 and len(bad) >= 20
    with KnowledgeBase(tmp_path / "data", collection="h", embed__backend="fake") as kb:
        summary = ingest_paths(kb, [tmp_path / "hostile"], IngestOptions(workers=2, timeout_s=60, optimize=False))
        errors = {Path(p.path).name: p for p in summary.errors}
        codes = {name: errors[name].code if name in errors else None for name in bad}
        assert codes == bad
        assert all(len(p.reason) > 10 for p in errors.values())
        stored = {Path(d["metadata"]["path"]).name for d in kb.list_documents(limit=1000)}
        assert good <= stored, f"not ingested: {good - stored}"
        # deep.html may parse or be refused, but never silently: it is one or the other.
        assert ("deep.html" in stored) != ("deep.html" in errors)
        assert set(errors) <= set(bad) | {"deep.html"}
        assert "中文编码测试" in kb.get_document("gbk.txt").text
        assert kb.get_document("gbk.txt").chunks[0].metadata["encoding"] == "gb18030"
        assert kb.get_document("pdf-named.txt").chunks[0].metadata["type"] == "pdf"
        warnings = {Path(p.path).name for p in summary.problems if p.level == "warning"}
        assert "broken-utf8.txt" in warnings
