"""PDF text with pdfplumber (pdfminer.six layout), tables as tables, scanned pages by OCR.

Text boxes become paragraphs with their page number; a short box set in a
clearly larger font than the body becomes a title, its depth given by how
large the font is among the document's heading sizes. Ruled tables become
table elements (header row first), so the chunker keeps them whole. A page
whose text layer is missing, too thin or mostly garbage glyphs is rendered
with PDFium and read by OCR (ingest/ocr.py), so mixed PDFs keep their real
text and still get their scanned pages. Encrypted and broken files raise
FileRejected with a reason a person can act on.
"""

from __future__ import annotations

import io
import statistics
from dataclasses import dataclass, field
from typing import Any

from zhiku.ingest.errors import FileRejected
from zhiku.ingest.model import Element, ParsedDoc
from zhiku.ingest.ocr import OcrOptions, join_lines, ocr_metadata, page_elements, pages_read

MAX_PAGES = 2000
_TITLE_RATIO = 1.2
# A text layer is garbage when fewer than this share of its characters are
# letters, digits or CJK (unmapped glyphs come out as "(cid:12)" or U+FFFD).
_MIN_READABLE = 0.5


@dataclass(slots=True)
class _Page:
    number: int
    boxes: list[tuple[str, float]] = field(default_factory=list)  # (text, font size)
    tables: list[list[list[str]]] = field(default_factory=list)
    order: list[tuple[float, str, int]] = field(default_factory=list)  # (top, "box"|"table", index)

    def readable(self) -> int:
        return sum(1 for text, _ in self.boxes for ch in text if ch.isalnum())

    def thin(self, min_chars: int) -> bool:
        """True when the text layer cannot stand for the page (a scan, or unmapped glyphs)."""
        total = sum(len("".join(text.split())) for text, _ in self.boxes) + sum(
            len(c) for t in self.tables for row in t for c in row)
        readable = self.readable()
        return readable + len(self.tables) * min_chars < min_chars or (total and readable / total < _MIN_READABLE)


def _pages(data: bytes) -> list[_Page]:
    """Text runs (text, font size) and ruled tables of each page, in reading order."""
    import pdfplumber
    from pdfminer.layout import LTChar, LTTextBox, LTTextLine

    pages: list[_Page] = []
    with pdfplumber.open(io.BytesIO(data), laparams={}) as pdf:
        if len(pdf.pages) > MAX_PAGES:
            raise FileRejected(f"PDF has more than {MAX_PAGES} pages", code="too_large")
        for page_no, page in enumerate(pdf.pages, 1):
            out = _Page(page_no)
            tables = page.find_tables() if page.edges else []
            areas = [t.bbox for t in tables]
            for t in tables:
                rows = [[" ".join((c or "").split()) for c in row] for row in t.extract()]
                rows = [r for r in rows if any(r)]
                if rows:
                    out.order.append((t.bbox[1], "table", len(out.tables)))
                    out.tables.append(rows)
            for box in page.layout:
                if not isinstance(box, LTTextBox):
                    continue
                top = page.height - box.y1
                centre = ((box.x0 + box.x1) / 2, page.height - (box.y0 + box.y1) / 2)
                if any(a[0] <= centre[0] <= a[2] and a[1] <= centre[1] <= a[3] for a in areas):
                    continue  # read as part of its table
                run: list[str] = []
                run_size = -1.0
                for line in box:
                    if not isinstance(line, LTTextLine):
                        continue
                    sizes = [ch.size for ch in line if isinstance(ch, LTChar)]
                    size = round(statistics.median(sizes), 1) if sizes else 0.0
                    text = line.get_text().rstrip("\n")
                    if run and size != run_size:
                        _add_box(out, top, "\n".join(run).strip(), run_size)
                        run = []
                    run.append(text)
                    run_size = size
                if run:
                    _add_box(out, top, "\n".join(run).strip(), run_size)
            out.order.sort(key=lambda item: item[0])
            pages.append(out)
    return pages


def _add_box(page: _Page, top: float, text: str, size: float) -> None:
    if text:
        page.order.append((top + len(page.boxes) * 1e-6, "box", len(page.boxes)))
        page.boxes.append((text, size))


def _reject(exc: Exception) -> FileRejected:
    if exc.args and isinstance(exc.args[0], Exception):
        exc = exc.args[0]  # pdfplumber wraps pdfminer's error (PDFPasswordIncorrect, say)
    name = type(exc).__name__
    text = str(exc) or name
    if "Password" in name or "Encrypt" in name or "password" in text.lower() or "Password" in text:
        return FileRejected("encrypted PDF (needs a password)", code="encrypted")
    return FileRejected(f"corrupt or truncated PDF ({name}: {text[:200]})", code="corrupt")


def _ocr_pages(data: bytes, numbers: list[int], options: OcrOptions) -> dict[int, list[Element]]:
    """Render the given pages with PDFium and read them by OCR."""
    import pypdfium2 as pdfium

    out: dict[int, list[Element]] = {}
    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise _reject(exc) from None
    try:
        for done, number in enumerate(numbers, 1):
            page = doc[number - 1]
            width, height = page.get_size()
            scale = options.dpi / 72
            if width * height * scale * scale > options.max_pixels:
                scale = (options.max_pixels / (width * height)) ** 0.5  # a huge page: fewer dots per inch
            image = page.render(scale=scale).to_pil()
            out[number] = page_elements(image, number)
            pages_read(done, len(numbers))
    finally:
        doc.close()
    return out


def load_pdf(data: bytes, name: str, ocr: OcrOptions = OcrOptions()) -> list[ParsedDoc]:
    """Paragraphs, titles and tables of a PDF, each with its page number; scanned pages OCR'd."""
    try:
        pages = _pages(data)
    except FileRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - pdfminer raises many unrelated types
        raise _reject(exc) from None
    scanned = [] if ocr.mode == "off" else [
        p.number for p in pages if ocr.mode == "force" or p.thin(ocr.min_chars)]
    if len(scanned) > ocr.max_pages:
        raise FileRejected(
            f"PDF has {len(scanned)} pages to OCR, over the limit of {ocr.max_pages} (ingest.ocr_max_pages)",
            code="too_large",
        )
    read = _ocr_pages(data, scanned, ocr) if scanned else {}
    boxes = [(p.number, t, s) for p in pages if p.number not in read for t, s in p.boxes]
    if not boxes and not any(read.values()) and not any(p.tables for p in pages if p.number not in read):
        why = "scanned images need OCR (ingest.ocr = auto)" if ocr.mode == "off" else "OCR found none either"
        raise FileRejected(f"PDF has no extractable text ({why})", code="no_text")
    sizes = [s for _, _, s in boxes if s]
    body = statistics.median(sizes) if sizes else 0.0
    heading_sizes = sorted(
        {round(s, 1) for _, t, s in boxes if body and s >= body * _TITLE_RATIO and _short(t)}, reverse=True)
    elements: list[Element] = []
    for page in pages:
        if page.number in read:
            elements.extend(read[page.number])
            continue
        for _, what, index in page.order:
            if what == "table":
                rows = page.tables[index]
                elements.append(Element("table", "\n".join(" | ".join(r) for r in rows), page=page.number, rows=rows))
                continue
            text, size = page.boxes[index]
            if round(size, 1) in heading_sizes and _short(text):
                level = heading_sizes.index(round(size, 1))
                elements.append(Element("title", " ".join(text.split()), level=level, page=page.number))
            else:
                elements.append(Element("text", _unwrap(text), page=page.number))
    meta: dict[str, Any] = {"pages": len(pages), **ocr_metadata(elements)}
    if read:
        meta["ocr_pages"] = sorted(read)
    title = next((e.text for e in elements if e.kind == "title"), "")
    return [ParsedDoc("", elements, title=title[:300], metadata=meta)]


def _short(text: str) -> bool:
    return len(text) <= 150 and text.count("\n") <= 2


def _unwrap(text: str) -> str:
    # pdfminer keeps the layout's line breaks; prose reads (and splits) better joined.
    return join_lines(text.splitlines())
