"""What a file is (by content first, extension second) and how its text is encoded.

Pure functions over bytes: no parser is imported here, so the scanner can
classify and vet files (zip bombs, binaries, legacy Office) cheaply before a
worker process spends time on them.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from dataclasses import dataclass

from zhiku.ingest.errors import FileRejected

# Extension -> kind, used when the content does not say otherwise.
EXTENSIONS: dict[str, str] = {
    ".txt": "text", ".text": "text", ".log": "text", ".rst": "text", ".tex": "text",
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".pdf": "pdf",
    ".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx",
    ".csv": "csv", ".tsv": "tsv",
    ".eml": "email",
    ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".tif": "image", ".tiff": "image",
    ".bmp": "image", ".webp": "image",
}
_CONTAINER_KINDS = frozenset({"pdf", "docx", "pptx", "xlsx"})
TEXT_KINDS = frozenset({"text", "markdown", "html", "csv", "tsv", "email", "json", "jsonl"})
_OOXML = (("word/", "docx"), ("ppt/", "pptx"), ("xl/", "xlsx"))
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Scans and photos that OCR reads (ingest/ocr.py).
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x7fELF", "an ELF executable"),
    (b"MZ", "a Windows executable"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "gzip data"),
    (b"BZh", "bzip2 data"),
    (b"\xfd7zXZ", "xz data"),
    (b"7z\xbc\xaf", "7-zip data"),
    (b"Rar!", "RAR data"),
    (b"SQLite format 3", "an SQLite database"),
    (b"OggS", "Ogg audio"),
    (b"ID3", "MP3 audio"),
)
_HTML_HEAD = re.compile(rb"^\s*(<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>])", re.I)
_EMAIL_HEAD = re.compile(rb"^(Received|Return-Path|From|Message-ID|MIME-Version|Delivered-To):", re.I)
_COMMON_HANZI = "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心她本前开但因只从想实日军者意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间由问很最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各入几口认条平系气题活尔更别打女变四神总何电数安少报才结反受目太量再感建务做接必场件计管期市直德资命山金指克许统区保至队形社便空决治展马科司五基眼书非则听白却界达光放强即像难且权思王象完设式色路记南品住告类求据程北边死张该交规万取拉格望觉术领共确传师观清今切院让识候带导争运笔"
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")


@dataclass(frozen=True, slots=True)
class ZipLimits:
    """What an Office (zip) container may declare before it is called a zip bomb."""

    max_total_bytes: int = 256 * 1024 * 1024
    max_ratio: float = 200.0
    max_entries: int = 20_000


def detect_kind(name: str, head: bytes) -> str:
    """Kind of a file from its first bytes, falling back to its extension."""
    suffix = _suffix(name)
    by_ext = EXTENSIONS.get(suffix)
    if head.startswith(b"%PDF-") or (b"%PDF-" in head[:1024] and by_ext == "pdf"):
        return "pdf"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"  # refined by office_kind() once the directory is read
    if _is_image(head):
        return "image"
    if head.startswith(_OLE):
        raise FileRejected(
            "legacy Microsoft Office binary format (.doc/.xls/.ppt) is not supported; "
            "save it as .docx/.xlsx/.pptx",
            code="unsupported_type",
        )
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise FileRejected(f"binary content ({what}), not a document", code="binary")
    if by_ext in (None, "text"):
        # An HTML or e-mail file saved as .txt (or with no extension) is read as what it is.
        body = head.lstrip(codecs.BOM_UTF8)
        if _HTML_HEAD.match(body):
            return "html"
        if _EMAIL_HEAD.match(body) and b"\nSubject:" in body[:8192]:
            return "email"
    if by_ext is None or by_ext in _CONTAINER_KINDS or by_ext == "image":
        # No PDF/zip signature: whatever the name says, the bytes are text or junk;
        # read them as text and let the binary sniffing decide.
        return "text"
    return by_ext


def _is_image(head: bytes) -> bool:
    if head.startswith(_IMAGE_MAGIC):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    # "BM" alone starts plenty of text; a real BMP header has four reserved zero bytes.
    return head[:2] == b"BM" and head[6:10] == b"\x00\x00\x00\x00" and len(head) >= 26


def office_kind(name: str, data: bytes, limits: ZipLimits = ZipLimits()) -> str:
    """docx/pptx/xlsx for an Office Open XML zip, after checking it is no zip bomb."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FileRejected(f"corrupt zip container: {exc}", code="corrupt") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise FileRejected(
                f"zip container has {len(infos)} entries (limit {limits.max_entries})",
                code="zip_bomb",
            )
        declared = sum(i.file_size for i in infos)
        packed = max(1, sum(i.compress_size for i in infos))
        # The ratio applies at every size: a small declared total is no reason to trust it.
        if declared > limits.max_total_bytes or declared / packed > limits.max_ratio:
            raise FileRejected(
                f"zip bomb suspected: {len(data)} bytes declare {declared / 2**20:.0f} MiB "
                f"uncompressed (ratio {declared / packed:.0f}:1)",
                code="zip_bomb",
            )
        names = {i.filename for i in infos}
    if "[Content_Types].xml" in names:
        for prefix, kind in _OOXML:
            if any(n.startswith(prefix) for n in names):
                return kind
    suffix = _suffix(name)
    if suffix in (".odt", ".ods", ".odp", ".epub"):
        raise FileRejected(f"{suffix} documents are not supported", code="unsupported_type")
    raise FileRejected("a zip archive, not an Office document", code="unsupported_type")


def looks_binary(data: bytes) -> str | None:
    """Why a would-be text file is really binary, or None if it reads as text."""
    sample = data[:65536]
    if not sample:
        return None
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None  # UTF-16 text is full of NULs by design
    nuls = sample.count(0)
    if nuls:
        return f"binary content ({nuls} NUL bytes in the first {len(sample)} bytes)"
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13, 27))
    if control / len(sample) > 0.05:
        return f"binary content ({control} control bytes in the first {len(sample)} bytes)"
    return None


@dataclass(frozen=True, slots=True)
class Decoded:
    """Text decoded from bytes, the encoding used, and how many bytes were replaced."""

    text: str
    encoding: str
    replaced: int = 0


def decode_text(data: bytes) -> Decoded:
    """Decode bytes as UTF-8, a BOM's encoding, GB18030 or whatever fits best."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return Decoded(data.decode(encoding, errors="replace"), encoding)
    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    # Chinese files from Windows are GBK/GB18030; accept that reading when it
    # decodes cleanly and yields mostly CJK rather than mojibake.
    try:
        text = data.decode("gb18030")
        if _reads_as_chinese(text):
            return Decoded(text, "gb18030")
    except UnicodeDecodeError:
        pass
    # Real UTF-8 (multi-byte characters decode) with a few broken bytes, say a
    # truncated download: keep the text and count the damage.
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    multibyte = sum(1 for c in text if ord(c) > 127) - bad
    if multibyte > bad and bad <= max(8, len(data) // 100):
        return Decoded(text, "utf-8", replaced=bad)
    guessed = _guess_encoding(data)
    if guessed is not None:
        return guessed
    if bad <= max(8, len(data) // 100):
        return Decoded(text, "utf-8", replaced=bad)
    raise FileRejected(
        f"undecodable text: not UTF-8 ({utf8_error.reason} at byte {utf8_error.start}) "
        "and no other encoding fits",
        code="encoding",
    )


_PREFERRED = ("gb18030", "big5", "shift_jis", "euc_kr", "cp1252", "latin_1", "cp1251", "koi8_r")


def _guess_encoding(data: bytes) -> Decoded | None:
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data[:262144]))
    if not matches:
        return None
    best = matches[0]
    # Many 8-bit code pages read Western text equally cleanly; when one of the
    # common ones is as good as the winner, take it (cp1257 for French is wrong).
    for match in matches:
        if match.encoding in _PREFERRED and match.chaos <= best.chaos + 0.12:
            best = match
            break
    encoding = best.encoding
    if encoding.lower().replace("_", "") in ("gb2312", "gbk", "hz"):
        encoding = "gb18030"  # a superset: never fail on characters outside GB2312
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None
    if best.chaos > 0.3:
        return None
    return Decoded(text, encoding)


def _reads_as_chinese(text: str) -> bool:
    # Mojibake of Latin text also decodes to CJK, but rarely to the commonest
    # characters; real Chinese prose is full of them.
    letters = "".join(c for c in text[:20000] if not c.isspace() and not c.isascii())
    cjk = len(_CJK.findall(letters))
    if not letters or cjk / len(letters) < 0.6:
        return False
    common = sum(letters.count(c) for c in _COMMON_HANZI)
    return cjk < 20 or common / cjk > 0.03


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""
