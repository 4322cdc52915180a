"""File loaders: bytes of one file in, parsed documents (structural elements) out.

A registry maps each detected kind to a loader. Office, HTML, Markdown, text
and e-mail go through `unstructured` (offline, see ingest/offline.py); PDF
uses pdfplumber (pdfminer.six, which is what unstructured's "fast" strategy
runs) because unstructured's PDF module imports unstructured-inference (and
with it a newer torch) even for that strategy; scanned pages and images are
read by OCR (ingest/ocr.py). CSV and JSON need no parser library.
Everything here runs inside a worker process.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from typing import Any, Callable, Iterable

from zhiku.ingest import offline
from zhiku.ingest.detect import decode_text, looks_binary
from zhiku.ingest.errors import FileRejected
from zhiku.ingest.model import Element, ParsedDoc
from zhiku.ingest.ocr import OcrOptions, load_image
from zhiku.ingest.pdf import load_pdf

Loader = Callable[[bytes, str], list[ParsedDoc]]
OcrLoader = Callable[[bytes, str, OcrOptions], list[ParsedDoc]]
_SKIP = frozenset({"Header", "Footer", "PageNumber", "PageBreak", "Image", "Figure"})
_KINDS = {"Title": "title", "ListItem": "list", "Table": "table", "CodeSnippet": "code"}
_TEXT_FIELDS = ("text", "content", "body", "contents", "passage")
_ID_FIELDS = ("_id", "id", "doc_id", "docid")


def text_of(data: bytes) -> tuple[str, dict[str, Any]]:
    """Decoded text of a text-like file, refusing binaries; metadata notes the encoding."""
    why = looks_binary(data)
    if why:
        raise FileRejected(why, code="binary")
    decoded = decode_text(data)
    meta: dict[str, Any] = {"encoding": decoded.encoding}
    if decoded.replaced:
        meta["replaced_bytes"] = decoded.replaced
    return decoded.text, meta


def from_unstructured(elements: Iterable[Any]) -> list[Element]:
    """Map unstructured's elements onto ours: titles with depth, lists, whole tables."""
    out: list[Element] = []
    for el in elements:
        category = getattr(el, "category", "")
        if category in _SKIP:
            continue
        md = el.metadata
        text = str(el.text or "")
        kind = _KINDS.get(category, "text")
        page = getattr(md, "page_number", None)
        if kind == "table":
            rows = html_table_rows(getattr(md, "text_as_html", None)) or None
            if rows is None and not text.strip():
                continue
            out.append(Element("table", text, page=page, rows=rows))
        elif text.strip():
            depth = getattr(md, "category_depth", None) or 0
            out.append(Element(kind, text, level=int(depth), page=page))  # type: ignore[arg-type]
    return out


def html_table_rows(html: str | None) -> list[list[str]]:
    """Rows of cell texts from a table's HTML (header row first, as written)."""
    if not html:
        return []
    from lxml import html as lxml_html

    try:
        tree = lxml_html.fromstring(html)
    except Exception:  # noqa: BLE001 - malformed table markup: fall back to its text
        return []
    rows = []
    for tr in tree.iter("tr"):
        cells = [" ".join(c.text_content().split()) for c in tr if c.tag in ("td", "th")]
        if any(cells):
            rows.append(cells)
    return rows


def _doc(elements: list[Element], meta: dict[str, Any] | None = None, title: str = "") -> list[ParsedDoc]:
    if not title:
        title = next((e.text.strip() for e in elements if e.kind == "title"), "")
    return [ParsedDoc("", elements, title=title[:300], metadata=meta or {})]


def load_text(data: bytes, name: str) -> list[ParsedDoc]:
    """Plain text: unstructured finds titles, lists and paragraphs."""
    text, meta = text_of(data)
    offline.prepare()
    from unstructured.partition.text import partition_text

    return _doc(_demote_sentences(from_unstructured(partition_text(text=text))), meta)


_SENTENCE_END = ("。", "！", "？", "；", ".", "!", "?", ";", "，", ",")


def _demote_sentences(elements: list[Element]) -> list[Element]:
    # unstructured calls any short line of plain text a title; a line that
    # ends like a sentence is prose, and must not open a section of its own.
    for el in elements:
        if el.kind == "title" and (el.text.rstrip().endswith(_SENTENCE_END) or len(el.text) > 120):
            el.kind = "text"
    return elements


def load_markdown(data: bytes, name: str) -> list[ParsedDoc]:
    """Markdown: headings give depth; pipe tables come out as tables."""
    text, meta = text_of(data)
    offline.prepare()
    from unstructured.partition.md import partition_md

    return _doc(from_unstructured(partition_md(text=text)), meta)


def load_html(data: bytes, name: str) -> list[ParsedDoc]:
    """HTML: h1-h6 give depth; tables stay tables."""
    text, meta = text_of(data)
    offline.prepare()
    from unstructured.partition.html import partition_html

    elements = from_unstructured(partition_html(text=text))
    if not elements:
        elements = _stripped_html(text)
    return _doc(elements, meta)


_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")


def _stripped_html(text: str) -> list[Element]:
    # Markup nested past the HTML parser's depth limit comes back empty from
    # it; the words are still there, so take them without the structure.
    import html as html_lib

    words = " ".join(html_lib.unescape(_TAG.sub(" ", _SCRIPT.sub(" ", text))).split())
    return [Element("text", words)] if words else []


def _office(partition_name: str, module: str) -> Loader:
    def load(data: bytes, name: str) -> list[ParsedDoc]:
        offline.prepare()
        import importlib

        partition = getattr(importlib.import_module(f"unstructured.partition.{module}"), partition_name)
        return _doc(from_unstructured(partition(file=io.BytesIO(data))))

    load.__doc__ = f"Office Open XML via unstructured.{partition_name}."
    return load


def load_xlsx(data: bytes, name: str) -> list[ParsedDoc]:
    """Spreadsheets: each sheet is a section holding its table."""
    offline.prepare()
    from unstructured.partition.xlsx import partition_xlsx

    elements: list[Element] = []
    for el in partition_xlsx(file=io.BytesIO(data), find_subtable=False):
        sheet = getattr(el.metadata, "page_name", None)
        if sheet and (not elements or elements[-1].text != sheet):
            elements.append(Element("title", sheet, level=0))
        elements.extend(from_unstructured([el]))
    return _doc(elements)


def load_email(data: bytes, name: str) -> list[ParsedDoc]:
    """An .eml message: the subject titles its body."""
    text_of(data)  # refuses binaries before the e-mail parser sees them
    offline.prepare()
    from unstructured.partition.email import partition_email

    elements = list(partition_email(file=io.BytesIO(data), process_attachments=False))
    subject = next((getattr(e.metadata, "subject", None) for e in elements if getattr(e.metadata, "subject", None)), "")
    sender = next((getattr(e.metadata, "sent_from", None) for e in elements if getattr(e.metadata, "sent_from", None)), None)
    ours = from_unstructured(elements)
    if subject:
        ours.insert(0, Element("title", subject, level=0))
    meta = {"email_from": ", ".join(sender)} if sender else {}
    return _doc(ours, meta, title=subject or "")


def load_delimited(data: bytes, name: str) -> list[ParsedDoc]:
    """CSV/TSV: one table, the first row its header."""
    text, meta = text_of(data)
    dialect: Any = "excel-tab" if name.lower().endswith(".tsv") else "excel"
    try:
        rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise FileRejected(f"malformed CSV: {exc}", code="corrupt") from None
    if not rows:
        return _doc([], meta)
    return _doc([Element("table", text, rows=rows)], meta)


def _flatten(value: Any, prefix: str = "") -> Iterable[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _flatten(item, prefix)
    elif value is not None and str(value).strip():
        yield f"{prefix}: {value}" if prefix else str(value)


def _record_doc(record: dict[str, Any], key: str) -> ParsedDoc:
    text_field = next(f for f in _TEXT_FIELDS if isinstance(record.get(f), str))
    title = str(record.get("title") or "")
    extra = {k: v for k, v in record.items() if k not in (text_field, "title", *_ID_FIELDS)}
    meta = {k: v for k, v in extra.items() if isinstance(v, (str, int, float, bool))}
    elements = [Element("text", record[text_field])] if record[text_field].strip() else []
    digest = hashlib.sha256(json.dumps(record, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return ParsedDoc(key, elements, title=title[:300], metadata=meta, content_hash=digest)


def load_jsonl(data: bytes, name: str) -> list[ParsedDoc]:
    """JSON Lines; records with a text field (a BEIR corpus, say) are documents of their own."""
    text, _ = text_of(data)
    docs: list[ParsedDoc] = []
    loose: list[Element] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FileRejected(f"invalid JSON on line {n}: {exc.msg}", code="corrupt") from None
        if isinstance(record, dict) and any(isinstance(record.get(f), str) for f in _TEXT_FIELDS):
            key = next((str(record[f]) for f in _ID_FIELDS if record.get(f) not in (None, "")), f"L{n}")
            docs.append(_record_doc(record, key))
        else:
            loose.append(Element("text", "\n".join(_flatten(record))))
    if loose:
        docs.extend(_doc(loose))
    return docs


def load_json(data: bytes, name: str) -> list[ParsedDoc]:
    """A JSON document as `path: value` lines."""
    text, meta = text_of(data)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileRejected(f"invalid JSON: {exc.msg} at line {exc.lineno}", code="corrupt") from None
    lines = list(_flatten(value))
    return _doc([Element("text", "\n".join(lines))] if lines else [], meta)


LOADERS: dict[str, Loader] = {
    "text": load_text,
    "markdown": load_markdown,
    "html": load_html,
    "pdf": load_pdf,
    "image": load_image,
    "docx": _office("partition_docx", "docx"),
    "pptx": _office("partition_pptx", "pptx"),
    "xlsx": load_xlsx,
    "csv": load_delimited,
    "tsv": load_delimited,
    "email": load_email,
    "json": load_json,
    "jsonl": load_jsonl,
}
# Kinds whose loader may run OCR, so it is told the run's OCR settings.
OCR_LOADERS: dict[str, OcrLoader] = {"pdf": load_pdf, "image": load_image}
