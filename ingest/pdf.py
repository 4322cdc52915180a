"""PDF text with pdfminer.six (unstructured's "fast" strategy, without its imports).

Text boxes become paragraphs with their page number; a short box set in a
clearly larger font than the body becomes a title, its depth given by how
large the font is among the document's heading sizes. Encrypted and broken
files raise FileRejected with a reason a person can act on.
"""

from __future__ import annotations

import io
import statistics
from typing import Any

from zhiku.ingest.errors import FileRejected
from zhiku.ingest.model import Element, ParsedDoc

MAX_PAGES = 2000
_TITLE_RATIO = 1.2


def _boxes(data: bytes) -> list[tuple[int, str, float]]:
    """(page, text, font size) per run of same-size lines inside each text box."""
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTChar, LTTextBox, LTTextLine

    out: list[tuple[int, str, float]] = []
    for page_no, page in enumerate(extract_pages(io.BytesIO(data), laparams=LAParams()), 1):
        if page_no > MAX_PAGES:
            raise FileRejected(f"PDF has more than {MAX_PAGES} pages", code="too_large")
        for box in page:
            if not isinstance(box, LTTextBox):
                continue
            run: list[str] = []
            run_size = -1.0
            for line in box:
                if not isinstance(line, LTTextLine):
                    continue
                sizes = [ch.size for ch in line if isinstance(ch, LTChar)]
                size = round(statistics.median(sizes), 1) if sizes else 0.0
                text = line.get_text().rstrip("\n")
                if run and size != run_size:
                    out.append((page_no, "\n".join(run).strip(), run_size))
                    run = []
                run.append(text)
                run_size = size
            if run and "".join(run).strip():
                out.append((page_no, "\n".join(run).strip(), run_size))
    return [b for b in out if b[1]]


def _reject(exc: Exception) -> FileRejected:
    name = type(exc).__name__
    text = str(exc) or name
    if "Password" in name or "Encrypt" in name or "password" in text.lower():
        return FileRejected("encrypted PDF (needs a password)", code="encrypted")
    return FileRejected(f"corrupt or truncated PDF ({name}: {text[:200]})", code="corrupt")


def load_pdf(data: bytes, name: str) -> list[ParsedDoc]:
    """Paragraphs and titles of a PDF, each with its page number."""
    try:
        boxes = _boxes(data)
    except FileRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - pdfminer raises many unrelated types
        raise _reject(exc) from None
    if not boxes:
        raise FileRejected("PDF has no extractable text (scanned images need OCR)", code="no_text")
    body = statistics.median(size for _, _, size in boxes if size) if any(s for *_, s in boxes) else 0.0
    heading_sizes = sorted(
        {round(s, 1) for _, t, s in boxes if body and s >= body * _TITLE_RATIO and _short(t)},
        reverse=True,
    )
    elements: list[Element] = []
    for page, text, size in boxes:
        rounded = round(size, 1)
        if rounded in heading_sizes and _short(text):
            level = heading_sizes.index(rounded)
            elements.append(Element("title", " ".join(text.split()), level=level, page=page))
        else:
            elements.append(Element("text", _unwrap(text), page=page))
    meta: dict[str, Any] = {"pages": boxes[-1][0]}
    title = next((e.text for e in elements if e.kind == "title"), "")
    return [ParsedDoc("", elements, title=title[:300], metadata=meta)]


def _short(text: str) -> bool:
    return len(text) <= 150 and text.count("\n") <= 2


def _unwrap(text: str) -> str:
    # pdfminer keeps the layout's line breaks; prose reads (and splits) better joined.
    lines = [line.strip() for line in text.splitlines()]
    out = []
    for line in lines:
        if out and out[-1].endswith("-") and line[:1].islower():
            out[-1] = out[-1][:-1] + line
        elif out and line:
            sep = "" if _cjk(out[-1][-1:]) and _cjk(line[:1]) else " "
            out[-1] = out[-1] + sep + line
        elif line:
            out.append(line)
    return "\n".join(out)


def _cjk(ch: str) -> bool:
    return bool(ch) and "\u3000" <= ch <= "\u9fff"
