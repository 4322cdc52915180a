"""Scans of known text, made on the spot, and the character error rate of reading them back.

Pages are drawn with Pillow in a font from a package that installs offline:
Debian's `fonts-wqy-zenhei` (WenQuanYi Zen Hei: CJK and Latin; the Makefile
installs it) or, for Latin-only pages where it is missing, the Aileron font
bundled inside Pillow's wheel. `degrade` adds what a scanner adds: sensor
noise, a soft focus and a skew of 2 degrees. Nothing binary is committed;
bench/ocr_corpus.py writes whole corpora from squad-dev and cmrc-trial.
"""

from __future__ import annotations

import io
import random
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

CJK_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc"),
)
DPI = 200
A4_WIDTH = int(8.27 * DPI)  # pixels at DPI
A4_HEIGHT = int(11.69 * DPI)
FONT_PT = 12


def cjk_font_path() -> Path | None:
    """WenQuanYi Zen Hei, when fonts-wqy-zenhei is installed."""
    return next((p for p in CJK_FONTS if p.is_file()), None)


def font(size_px: int, cjk: bool = True) -> Any:
    """A font for drawing: WenQuanYi for CJK (None when missing), else Pillow's own."""
    from PIL import ImageFont

    path = cjk_font_path()
    if path is not None:
        return ImageFont.truetype(str(path), size_px)
    if cjk:
        return None
    return ImageFont.load_default(size_px)


def _wrap(text: str, draw_font: Any, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    # Latin wraps at spaces, CJK anywhere: split into words keeping CJK characters single.
    tokens: list[str] = []
    for ch in text:
        if ch.isspace():
            tokens.append(" ")
        elif tokens and tokens[-1] != " " and ch.isascii() and tokens[-1][-1:].isascii():
            tokens[-1] += ch
        else:
            tokens.append(ch)
    for token in tokens:
        candidate = line + token
        if line and draw_font.getlength(candidate.rstrip()) > width:
            lines.append(line.rstrip())
            line = token.lstrip()
        else:
            line = candidate
    if line.strip():
        lines.append(line.rstrip())
    return lines


@dataclass(slots=True)
class Page:
    """One drawn page and the text on it, line by line, in reading order."""

    image: Any
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def render(
    paragraphs: Sequence[str], width: int = A4_WIDTH, height: int | None = A4_HEIGHT, size_px: int | None = None,
    cjk: bool = True, columns: int = 1,
) -> list[Page]:
    """Paragraphs drawn on pages (a blank line between paragraphs); `height=None` crops to the text."""
    from PIL import Image, ImageDraw

    size = size_px or round(FONT_PT / 72 * DPI)
    draw_font = font(size, cjk)
    if draw_font is None:
        raise RuntimeError("no CJK font: install fonts-wqy-zenhei (make install does)")
    margin, leading, gutter = size * 2, round(size * 1.5), size * 2
    col_width = (width - 2 * margin - gutter * (columns - 1)) // columns
    rows: list[str | None] = []  # None: the gap between paragraphs
    for para in paragraphs:
        if rows:
            rows.append(None)
        rows.extend(_wrap(" ".join(para.split()) if para.isascii() else para.strip(), draw_font, col_width))
    per_col = ((height - 2 * margin) // leading) if height else len(rows)
    pages: list[Page] = []
    while rows:
        take = rows[: per_col * columns]
        del rows[: per_col * columns]
        page_height = height or 2 * margin + leading * len(take)
        image = Image.new("L", (width, page_height), 255)
        draw = ImageDraw.Draw(image)
        lines: list[str] = []
        for n, row in enumerate(take):
            col, at = divmod(n, per_col)
            if row:
                draw.text((margin + col * (col_width + gutter), margin + at * leading), row, font=draw_font, fill=0)
                lines.append(row)
        pages.append(Page(image.convert("RGB"), lines))
    return pages


def degrade(image: Any, seed: int = 0, noise: float = 18.0, blur: float = 0.8, angle: float = 2.0) -> Any:
    """A scanner's look: Gaussian noise (sigma in grey levels), blur, and a small rotation."""
    import numpy as np
    from PIL import Image, ImageFilter

    rotated = image.convert("L").rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=255)
    blurred = rotated.filter(ImageFilter.GaussianBlur(blur))
    rng = np.random.default_rng(seed)
    pixels = np.asarray(blurred, dtype=np.float32) + rng.normal(0.0, noise, (blurred.height, blurred.width))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).convert("RGB")


def image_bytes(image: Any, fmt: str = "PNG") -> bytes:
    """An image encoded as PNG, JPEG, TIFF, BMP or WEBP."""
    buf = io.BytesIO()
    image.save(buf, fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP") else {}))
    return buf.getvalue()


def tiff_bytes(images: Sequence[Any]) -> bytes:
    """A multi-page TIFF."""
    buf = io.BytesIO()
    images[0].save(buf, "TIFF", save_all=True, append_images=list(images[1:]), compression="tiff_deflate")
    return buf.getvalue()


def image_pdf(images: Sequence[Any], dpi: int = DPI) -> bytes:
    """An image-only PDF (no text layer): what a scanner writes."""
    buf = io.BytesIO()
    images[0].save(buf, "PDF", save_all=True, append_images=list(images[1:]), resolution=float(dpi))
    return buf.getvalue()


def mixed_pdf(text_pdf: bytes, images: Sequence[Any], dpi: int = DPI) -> bytes:
    """A PDF whose first pages carry a text layer and whose last pages are scans."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(text_pdf)
    scans = pdfium.PdfDocument(image_pdf(images, dpi))
    doc.import_pages(scans)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def _normalise(text: str, keep_spaces: bool) -> str:
    text = unicodedata.normalize("NFKC", text)
    return " ".join(text.split()) if keep_spaces else "".join(text.split())


def char_error_rate(reference: str, hypothesis: str, keep_spaces: bool = True) -> float:
    """Edits (insertions, deletions, substitutions) per reference character, after NFKC.

    Chinese is compared without whitespace (it has none between words);
    English with single spaces, so a lost word break counts as an error.
    """
    from rapidfuzz.distance import Levenshtein

    ref, hyp = _normalise(reference, keep_spaces), _normalise(hypothesis, keep_spaces)
    return Levenshtein.distance(ref, hyp) / max(1, len(ref))


def sample(paragraphs: Sequence[str], n: int, seed: int = 7) -> list[str]:
    """A fixed random sample of paragraphs (the same every run)."""
    items = list(paragraphs)
    random.Random(seed).shuffle(items)
    return items[:n]
