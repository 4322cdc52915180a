"""Structure-aware chunking: parsed elements in, size-bounded pieces out.

Titles open sections (a chunk never spans two); each piece records its
section path and its parent so an answer can widen to the whole section
(small-to-big). Tables stay whole with their header up to `table_max`
tokens, beyond which they are cut between rows with the header repeated.
Consecutive list items are kept together. Everything else is packed and cut
by the recursive splitter (CJK sentence ends included), measured in the
embedder's own tokens. Pure functions: same elements, same pieces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from zhiku.engine.textsplit import split_text
from zhiku.engine.types import SECTION_SEP
from zhiku.ingest.model import Element, Piece

CountTokens = Callable[[str], int]


@dataclass(frozen=True, slots=True)
class ChunkOptions:
    """Chunk size and overlap in tokens; tables may be larger than prose up to `table_max`."""

    size: int = 200
    overlap: int = 30
    table_max: int | None = None  # None: same as size

    def signature(self) -> str:
        """What goes into each document's content hash, so new options re-chunk."""
        return f"chunk:v1:{self.size}:{self.overlap}:{self.table_max or self.size}"


@dataclass(slots=True)
class _Section:
    path: list[str]
    elements: list[Element] = field(default_factory=list)


def split_sections(elements: Sequence[Element]) -> list[_Section]:
    """Group elements under the titles above them; a title's level sets its depth.

    A heading with no body that is closed by a sibling would vanish from every
    section path, so its text is carried into the next section instead.
    """
    sections = [_Section([])]
    stack: list[tuple[int, str]] = []
    for el in elements:
        if el.kind == "title":
            title = " ".join(el.text.split())
            if not title:
                continue
            carried: list[Element] = []
            last = sections[-1]
            if last.path and all(e.kind == "title" for e in last.elements) and stack and stack[-1][0] >= el.level:
                carried = [Element("text", e.text, page=e.page, confidence=e.confidence) for e in last.elements]
                last.elements = []
            while stack and stack[-1][0] >= el.level:
                stack.pop()
            stack.append((el.level, title))
            sections.append(_Section([t for _, t in stack], [*carried, el]))
        elif el.text.strip() or el.rows:
            sections[-1].elements.append(el)
    kept = [s for s in sections if any(e.kind != "title" for e in s.elements)]
    if not kept and len(sections) > 1:
        # Headings and nothing else: still words worth finding, as one section.
        return [_Section([], [e for s in sections for e in s.elements])]
    if sections[-1].elements and sections[-1] not in kept:
        kept.append(sections[-1])  # a trailing heading keeps its words
    return kept


def render_rows(rows: Sequence[Sequence[str]]) -> str:
    """A table as pipe-separated lines (markdown-like), one row per line."""
    return "\n".join("| " + " | ".join(" ".join(c.split()) for c in row) + " |" for row in rows)


def table_texts(rows: Sequence[Sequence[str]], count: CountTokens, max_tokens: int) -> list[str]:
    """A whole table if it fits, else groups of rows each led by the header row."""
    if not rows:
        return []
    whole = render_rows(rows)
    if count(whole) <= max_tokens or len(rows) <= 2:
        return [whole] if count(whole) <= max_tokens else _oversized_rows(rows, count, max_tokens)
    header, body = list(rows[0]), rows[1:]
    head_text = render_rows([header])
    budget = max(1, max_tokens - count(head_text))
    parts: list[str] = []
    group: list[str] = []
    used = 0
    for row in body:
        line = render_rows([row])
        cost = count(line) + 1
        if group and used + cost > budget:
            parts.append("\n".join([head_text, *group]))
            group, used = [], 0
        group.append(line)
        used += cost
    if group:
        parts.append("\n".join([head_text, *group]))
    # A single row may still be too long: cut it like prose, header first.
    out: list[str] = []
    for part in parts:
        if count(part) <= max_tokens:
            out.append(part)
        else:
            out.extend(split_text(part, max_tokens, 0, count))
    return out


def _oversized_rows(rows: Sequence[Sequence[str]], count: CountTokens, max_tokens: int) -> list[str]:
    return split_text(render_rows(rows), max_tokens, 0, count)


_Span = tuple[int, int, int | None, float | None]  # start, end, page, OCR confidence


def _run_text(run: Sequence[Element]) -> tuple[str, list[_Span]]:
    """Join prose elements; list items one per line. Returns text and page/confidence spans."""
    parts: list[str] = []
    spans: list[_Span] = []
    pos = 0
    prev_kind = ""
    for el in run:
        text = el.text.strip()
        if not text:
            continue
        if el.kind == "list":
            text = text if text[:2] in ("- ", "* ") or text[:1].isdigit() else f"- {text}"
        sep = "" if not parts else ("\n" if el.kind == "list" and prev_kind == "list" else "\n\n")
        pos += len(sep)
        parts.append(sep + text)
        if el.page is not None or el.confidence is not None:
            spans.append((pos, pos + len(text), el.page, el.confidence))
        pos += len(text)
        prev_kind = el.kind
    return "".join(parts), spans


def _spans_of(piece: str, text: str, spans: list[_Span], cursor: int) -> tuple[list[_Span], int]:
    """The spans a piece of `text` overlaps, and where to look for the next piece."""
    if not spans:
        return [], cursor
    start = text.find(piece[:64], max(0, cursor - len(piece)))
    if start < 0:
        start = text.find(piece[:64])
    if start < 0:
        return spans, cursor
    end = start + len(piece)
    return [sp for sp in spans if sp[0] < end and sp[1] > start], start + 1


def _pages_and_confidence(spans: list[_Span]) -> dict[str, Any]:
    pages = sorted({sp[2] for sp in spans if sp[2] is not None})
    scores = [sp[3] for sp in spans if sp[3] is not None]
    return {"pages": pages, "ocr_confidence": min(scores) if scores else None}


def _split_run(run: Sequence[Element], heading: str, count: CountTokens, options: ChunkOptions, base: dict) -> list[Piece]:
    # The heading leads the first piece (its words matter for search) but is
    # never a piece of its own: the body is cut with room left for it.
    text, spans = _run_text(run)
    head_cost = count(heading) + 1 if heading else 0
    if head_cost > options.size // 4:
        heading, head_cost = "", 0  # too long to lead every section: the path still names it
    size = options.size - head_cost
    parts = split_text(text, size, min(options.overlap, size // 2), count) if text else []
    if heading and parts:
        parts[0] = f"{heading}\n{parts[0]}"
    elif not parts and run == [] and heading:
        parts = [heading]
    out = []
    cursor = 0
    for part in parts:
        covered, cursor = _spans_of(part, text, spans, cursor)
        out.append(Piece(part, **_pages_and_confidence(covered), **base))
    return out


def chunk_elements(elements: Sequence[Element], count: CountTokens, options: ChunkOptions) -> list[Piece]:
    """Cut a document's elements into pieces that respect sections, tables and lists."""
    table_max = options.table_max or options.size
    pieces: list[Piece] = []
    for index, section in enumerate(split_sections(elements)):
        path = SECTION_SEP.join(section.path)
        parent = SECTION_SEP.join(section.path[:-1])
        base = {"section": path, "parent_section": parent, "section_index": index}
        body = list(section.elements)
        heading = ""
        if body and body[0].kind == "title":
            heading = " ".join(body.pop(0).text.split())
        run: list[Element] = []
        for el in [*body, None]:
            if el is not None and el.kind != "table":
                run.append(el)
                continue
            if run or (heading and el is None):
                if not run and count(heading) > options.size // 4:
                    run = [Element("text", heading)]
                pieces.extend(_split_run(run, heading, count, options, base))
            run, heading = [], ""  # a table's caption repeats the heading
            if el is not None:
                rows = el.rows or [[el.text]]
                where = _pages_and_confidence([(0, 0, el.page, el.confidence)])
                caption = f"{section.path[-1]}\n" if section.path else ""
                for part in table_texts(rows, count, table_max):
                    text = caption + part if count(caption + part) <= table_max else part
                    pieces.append(Piece(text, kind="table", **where, **base))
    return pieces
