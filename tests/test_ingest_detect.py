"""Type detection by content and text-encoding detection."""

from __future__ import annotations

import io
import zipfile

import pytest

from zhiku.ingest.detect import ZipLimits, decode_text, detect_kind, looks_binary, office_kind
from zhiku.ingest.errors import FileRejected

CHINESE = "知识库是一个检索增强生成系统。它支持中文和英文的混合检索，并且可以增量同步文件。"


@pytest.mark.parametrize(
    ("name", "head", "kind"),
    [
        ("a.txt", b"hello", "text"),
        ("a.md", b"# hi", "markdown"),
        ("a.pdf", b"%PDF-1.4\n", "pdf"),
        ("renamed.txt", b"%PDF-1.7\n...", "pdf"),
        ("page.txt", b"<!DOCTYPE html><html>", "html"),
        ("noext", b"<html><body>x", "html"),
        ("a.docx", b"PK\x03\x04rest", "zip"),
        ("mail.txt", b"From: a@b.c\nTo: d@e.f\nSubject: hi\n\nbody", "email"),
        ("a.jsonl", b'{"_id": 1}', "jsonl"),
        ("a.csv", b"a,b\n1,2", "csv"),
        ("a.unknown", b"plain words", "text"),
    ],
)
def test_detect_kind(name: str, head: bytes, kind: str) -> None:
    assert detect_kind(name, head) == kind


@pytest.mark.parametrize(
    ("head", "code"),
    [(b"\x7fELF\x02\x01", "binary"), (b"GIF89a", "binary"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "unsupported_type")],
)
def test_binary_formats_are_rejected(head: bytes, code: str) -> None:
    with pytest.raises(FileRejected) as err:
        detect_kind("x.txt", head)
    assert err.value.reason_code == code


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_office_kind_from_zip_directory() -> None:
    base = {"[Content_Types].xml": b"<Types/>"}
    assert office_kind("a.bin", _zip({**base, "word/document.xml": b"<w/>"})) == "docx"
    assert office_kind("a.bin", _zip({**base, "ppt/presentation.xml": b"<p/>"})) == "pptx"
    assert office_kind("a.bin", _zip({**base, "xl/workbook.xml": b"<x/>"})) == "xlsx"
    with pytest.raises(FileRejected, match="not an Office document"):
        office_kind("a.zip", _zip({"readme.txt": b"hi"}))


def test_zip_bomb_is_caught_from_the_directory() -> None:
    bomb = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"\0" * (40 * 2**20)})
    assert len(bomb) < 100_000
    with pytest.raises(FileRejected) as err:
        office_kind("bomb.docx", bomb, ZipLimits(max_total_bytes=32 * 2**20))
    assert err.value.reason_code == "zip_bomb"
    assert "zip bomb" in err.value.message


def test_truncated_zip_is_corrupt() -> None:
    data = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w/>" * 1000})
    with pytest.raises(FileRejected) as err:
        office_kind("cut.docx", data[: len(data) // 2])
    assert err.value.reason_code == "corrupt"


@pytest.mark.parametrize("encoding", ["utf-8", "gbk", "gb18030", "utf-16", "utf-8-sig"])
def test_chinese_text_decodes_in_common_encodings(encoding: str) -> None:
    decoded = decode_text(CHINESE.encode(encoding))
    assert decoded.text.lstrip("\ufeff") == CHINESE


def test_short_gbk_decodes_as_chinese() -> None:
    assert decode_text("中文测试".encode("gbk")).text == "中文测试"


def test_latin1_is_not_mistaken_for_chinese() -> None:
    text = "Café crème brûlée à la carte, déjà vu, naïve résumé. " * 5
    assert decode_text(text.encode("latin-1")).text == text


def test_mostly_utf8_with_a_bad_byte_is_kept_and_counted() -> None:
    data = ("valid text – 中文 " * 200).encode() + "中".encode()[:2] + b" more text"
    decoded = decode_text(data)
    assert decoded.replaced == 1 and "more text" in decoded.text


def test_binary_sniffing() -> None:
    assert looks_binary(b"plain text\n") is None
    assert "NUL" in (looks_binary(b"abc\0\0\0def") or "")
    assert looks_binary("中文".encode("utf-16")) is None
