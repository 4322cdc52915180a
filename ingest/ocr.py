"""Offline OCR for scans and photos: RapidOCR (PP-OCRv4 zh/en) lines -> paragraphs.

Steps, for one page image:
1. Vet the image before decoding it: a pixel count over `OcrOptions.max_pixels`
   is refused (a 20,000 x 20,000 scan is a decompression bomb, not a page).
2. Detect and recognise lines with the models bundled in the
   `rapidocr-onnxruntime` wheel (never downloaded). Every line is kept, with
   its confidence; the recogniser's own cut-off is disabled so that
   low-confidence lines are marked (`LOW_CONFIDENCE`) instead of dropped.
3. Put the lines in reading order with a recursive XY cut: split at vertical
   gutters first (columns, left to right), then at horizontal gaps wider than
   the usual line spacing (blocks, top to bottom). A block's lines are joined
   into paragraphs; an indented first line also starts one.
4. Each paragraph becomes an Element with its page number and the lowest
   confidence of its lines, so the chunker can say which chunks OCR read.

The engine is built once per process (a parse worker), with one thread: the
pool runs one worker per core, so intra-op threads would only fight.
"""

from __future__ import annotations

import functools
import io
import statistics
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Sequence

from zhiku.ingest.errors import FileRejected
from zhiku.ingest.model import Element, ParsedDoc

OcrMode = Literal["auto", "off", "force"]
# PP-OCRv4's Chinese model reads Chinese and English (Latin letters, digits).
SUPPORTED_LANGUAGES = frozenset({"zh", "en"})
# Lines below this recognition score are kept but marked. PP-OCR's own default
# drops them at 0.5; on our noisy renders, lines between 0.5 and 0.8 were
# mostly right with one or two wrong characters.
LOW_CONFIDENCE = 0.8
# Rows (in line heights) between blocks, and the gutter width between columns.
_BLOCK_GAP = 0.8
_GUTTER = 1.5
_INDENT = 1.5
# Ink-free columns (in line heights) that make a word break between Latin
# letters: on 31 px lines, letters of a word measured 0-5 px apart, the word
# breaks the recogniser dropped 10-13 px.
_SPACE_GAP = 0.25
_MAYBE_SCANNED = (".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
_IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpeg", "TIFF": "tiff", "BMP": "bmp", "WEBP": "webp"}


@dataclass(frozen=True, slots=True)
class OcrOptions:
    """When and how OCR runs; travels to parse workers inside ParseTask."""

    mode: OcrMode = "auto"
    dpi: int = 200
    languages: tuple[str, ...] = ("zh", "en")
    max_pages: int = 300
    # A PDF page whose text layer has fewer characters than this is OCR'd.
    min_chars: int = 20
    max_pixels: int = 60_000_000

    @classmethod
    def from_settings(cls, settings: Any) -> "OcrOptions":
        """The OCR part of `Settings.ingest` (defaults when the settings have none)."""
        ingest = getattr(settings, "ingest", None)
        if ingest is None:
            return cls()
        return cls(ingest.ocr, ingest.ocr_dpi, tuple(ingest.ocr_languages), ingest.ocr_max_pages, ingest.ocr_min_chars)

    def signature(self) -> str:
        """What a remembered failure depends on: new OCR settings deserve a new try."""
        return f"ocr:v1:{self.mode}:{self.dpi}:{','.join(self.languages)}:{self.max_pages}:{self.min_chars}"


@dataclass(frozen=True, slots=True)
class Line:
    """One recognised line: text, score and its axis-aligned box in pixels."""

    text: str
    score: float
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def height(self) -> float:
        return self.y1 - self.y0


# -- progress, reported by a parse worker to the pool ---------------------------------

_progress: Callable[[int, int], None] | None = None


def set_progress_sink(sink: Callable[[int, int], None] | None) -> None:
    """Where `pages_read(done, total)` reports go in this process (the pool's pipe)."""
    global _progress
    _progress = sink


def pages_read(done: int, total: int) -> None:
    """Tell whoever supervises this process that OCR has read `done` of `total` pages."""
    if _progress is not None:
        _progress(done, total)


# -- the engine ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _engine() -> Any:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:  # pragma: no cover - a dependency of the package
        raise FileRejected("OCR is not installed (rapidocr-onnxruntime)", code="ocr_unavailable") from None
    # No direction classifier: it turned whole, upright English lines upside down
    # (read back as "o"); a page scanned upside down is rare, a long line is not.
    return RapidOCR(text_score=0.0, use_cls=False, intra_op_num_threads=1, inter_op_num_threads=1)


def read_lines(image: Any) -> list[Line]:
    """Recognised lines of an RGB image (numpy array or PIL image), in no order."""
    import numpy as np

    array = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    # Character boxes (return_word_box) locate the letters between which a space may be missing.
    result, _ = _engine()(array, return_word_box=True, text_score=0.0)
    ink = array.min(axis=2) < 128
    lines = []
    for item in result or []:
        box, text, score = item[0], str(item[1]), float(item[2])
        if text and len(item) > 3 and isinstance(item[3], list) and len(item[3]) == len(text):
            text = _restore_spaces(text, item[3], *_empty_columns(ink, box))
        text = text.strip()
        if not text:
            continue
        xs = [p[0] for p in box]
        ys = [p[1] for p in box]
        lines.append(Line(text, score, min(xs), min(ys), max(xs), max(ys)))
    return lines


def _empty_columns(ink: Any, box: Sequence[Sequence[float]]) -> tuple[Any, int, float]:
    """Which columns of a (possibly skewed) line box hold no ink; first column; line height."""
    import numpy as np

    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = box[:4]  # top-left, top-right, bottom-right, bottom-left
    left, right = int(min(x0, x3)), int(max(x1, x2)) + 1
    height = max(1.0, ((y3 - y0) + (y2 - y1)) / 2)
    empty = np.ones(max(0, right - left), dtype=bool)
    span = max(1.0, x1 - x0)
    for n, x in enumerate(range(left, min(right, ink.shape[1]))):
        f = (x - x0) / span  # follow the line's slope: a 2 degree skew drifts 50 px across a page
        top = int(y0 + (y1 - y0) * f)
        bottom = int(y3 + (y2 - y3) * f) + 1
        empty[n] = not ink[max(0, top):max(0, bottom), x].any()
    return empty, left, height


def _restore_spaces(text: str, boxes: list[Any], empty: Any, left: int, height: float) -> str:
    """Put back word breaks the recogniser dropped, where the printed line shows a gap.

    PP-OCRv4's Chinese model often reads "scanned pages" as "scannedpages".
    Its per-character positions are too coarse to tell letter from word
    spacing, so look at the pixels: between two Latin characters, a run of
    ink-free columns wider than `_SPACE_GAP` line heights is a space.
    """
    centres = [(min(p[0] for p in b) + max(p[0] for p in b)) / 2 - left for b in boxes]
    need = max(3, height * _SPACE_GAP)
    out = text[0]
    for i in range(1, len(text)):
        prev, ch = text[i - 1], text[i]
        if not prev.isspace() and not ch.isspace() and prev.isascii() and ch.isascii():
            if _longest_run(empty[max(0, int(centres[i - 1])) : max(0, int(centres[i]) + 1)]) >= need:
                out += " "
        out += ch
    return out


def _longest_run(flags: Any) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


# -- reading order ------------------------------------------------------------------------


def reading_order(lines: Sequence[Line]) -> list[list[Line]]:
    """Lines grouped into paragraphs, paragraphs in reading order (columns left to right)."""
    if not lines:
        return []
    unit = statistics.median(line.height for line in lines) or 1.0
    return [para for block in _xy_cut(list(lines), unit) for para in _paragraphs(block, unit)]


def _xy_cut(lines: list[Line], unit: float) -> Iterator[list[Line]]:
    # Cut at the widest empty band first (in line heights): a wide band under
    # two columns separates a full-width footer from them; a gutter wider than
    # the gaps between paragraphs separates the columns themselves.
    columns, x_gap = _split(lines, unit * _GUTTER, lambda l: (l.x0, l.x1))
    blocks, y_gap = _split(lines, unit * _BLOCK_GAP, lambda l: (l.y0, l.y1))
    best = columns if len(columns) > 1 and (len(blocks) == 1 or x_gap >= y_gap) else blocks
    if len(best) == 1:
        yield lines
        return
    for group in best:
        yield from _xy_cut(group, unit)


def _split(
    lines: list[Line], gap: float, span: Callable[[Line], tuple[float, float]]
) -> tuple[list[list[Line]], float]:
    """Groups separated by an empty band at least `gap` wide along one axis, and the widest band."""
    ordered = sorted(lines, key=span)
    groups: list[list[Line]] = [[ordered[0]]]
    reach = span(ordered[0])[1]
    widest = 0.0
    for line in ordered[1:]:
        start, end = span(line)
        if start - reach >= gap:
            groups.append([])
            widest = max(widest, start - reach)
        groups[-1].append(line)
        reach = max(reach, end)
    return groups, widest


def _rows(block: list[Line]) -> list[list[Line]]:
    # Boxes that overlap vertically by half a line are one row (a detector may
    # cut one printed line into several boxes).
    rows: list[list[Line]] = []
    for line in sorted(block, key=lambda l: (l.y0 + l.y1) / 2):
        mid = (line.y0 + line.y1) / 2
        if rows and rows[-1][-1].y0 <= mid <= rows[-1][-1].y1:
            rows[-1].append(line)
        else:
            rows.append([line])
    return [sorted(row, key=lambda l: l.x0) for row in rows]


def _paragraphs(block: list[Line], unit: float) -> list[list[Line]]:
    rows = _rows(block)
    left = min(line.x0 for line in block)
    paras: list[list[Line]] = []
    for n, row in enumerate(rows):
        indented = row[0].x0 - left >= unit * _INDENT and n > 0
        if not paras or (indented and len(rows) > 2):
            paras.append([])
        paras[-1].extend(row)
    return paras


def join_lines(lines: Sequence[str]) -> str:
    """Printed lines joined as prose: no space between CJK, hyphenated words rejoined."""
    out = ""
    for line in (s.strip() for s in lines):
        if not line:
            continue
        if out.endswith("-") and line[:1].islower():
            out = out[:-1] + line
        elif out:
            out += ("" if _cjk(out[-1]) and _cjk(line[0]) else " ") + line
        else:
            out = line
    return out


def _cjk(ch: str) -> bool:
    return "\u2e80" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or "\uff00" <= ch <= "\uffef"


def page_elements(image: Any, page: int | None) -> list[Element]:
    """OCR one page image into paragraph elements with page number and confidence."""
    elements = []
    for para in reading_order(read_lines(image)):
        text = join_lines([line.text for line in para])
        if text:
            elements.append(Element("text", text, page=page, confidence=min(l.score for l in para)))
    return elements


def ocr_metadata(elements: Sequence[Element]) -> dict[str, Any]:
    """Document metadata for OCR'd elements: the flag, mean confidence, low-confidence count."""
    scores = [e.confidence for e in elements if e.confidence is not None]
    if not scores:
        return {}
    return {
        "ocr": True,
        "ocr_confidence": round(statistics.fmean(scores), 3),
        "ocr_low_confidence": sum(1 for s in scores if s < LOW_CONFIDENCE),
    }


def heavy_first_last(tasks: list[Any]) -> list[Any]:
    """Tasks with files that may need OCR (images, PDFs) moved after the rest, order kept.

    A scanned book takes minutes; queued first it would hold a worker while
    hundreds of small files wait behind it, so with one worker they all wait.
    """
    return sorted(tasks, key=lambda t: t.path.lower().endswith(_MAYBE_SCANNED))


# -- images -----------------------------------------------------------------------------


def _open_image(data: bytes, max_pixels: int) -> Any:
    from PIL import Image, UnidentifiedImageError

    # PIL's own bomb guard warns at 89 M pixels and raises at twice that; ours
    # is lower and refuses before any pixel is decoded (only the header is read).
    Image.MAX_IMAGE_PIXELS = None
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise FileRejected(f"unreadable image ({exc})", code="corrupt") from None
    if image.format not in _IMAGE_FORMATS:
        raise FileRejected(f"unsupported image format {image.format}", code="unsupported_type")
    return image


def _frames(image: Any, options: OcrOptions) -> Iterator[Any]:
    count = getattr(image, "n_frames", 1)
    if count > options.max_pages:
        raise FileRejected(
            f"image has {count} pages, over the OCR limit of {options.max_pages} (ingest.ocr_max_pages)",
            code="too_large",
        )
    for index in range(count):
        image.seek(index)
        width, height = image.size
        if width * height > options.max_pixels:
            raise FileRejected(
                f"image page {index + 1} is {width} x {height} pixels, over the OCR limit of "
                f"{options.max_pixels / 1e6:.0f} M pixels",
                code="too_large",
            )
        try:
            yield image.convert("RGB")
        except (OSError, ValueError, SyntaxError) as exc:
            raise FileRejected(f"corrupt or truncated image ({exc})", code="corrupt") from None


def load_image(data: bytes, name: str, options: OcrOptions = OcrOptions()) -> list[ParsedDoc]:
    """A scanned page or photo (multi-page TIFF: one page per frame), read by OCR."""
    if options.mode == "off":
        raise FileRejected("an image needs OCR, and OCR is off (ingest.ocr = off)", code="no_text")
    image = _open_image(data, options.max_pixels)
    total = getattr(image, "n_frames", 1)
    elements: list[Element] = []
    for page, frame in enumerate(_frames(image, options), 1):
        elements.extend(page_elements(frame, page))
        pages_read(page, total)
    if not elements:
        raise FileRejected("OCR found no text in the image", code="no_text")
    meta = {"pages": total, "image_format": _IMAGE_FORMATS[image.format], **ocr_metadata(elements)}
    return [ParsedDoc("", elements, metadata=meta)]
