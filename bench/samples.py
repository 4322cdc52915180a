"""Writers for small real-format documents: tests, the benchmark and the sample corpus.

`write_pdf` emits a minimal but valid text PDF (Helvetica, WinAnsi) by hand,
so no PDF library is needed; `write_docx` uses python-docx (a dependency of
unstructured's docx support). Content is `(heading, paragraphs)` sections.
"""

from __future__ import annotations

import html
import textwrap
from pathlib import Path
from typing import Sequence

Section = tuple[str, Sequence[str]]


def markdown(title: str, sections: Sequence[Section]) -> str:
    """A Markdown document: `#` title, `##` sections."""
    parts = [f"# {title}\n"]
    for heading, paragraphs in sections:
        parts.append(f"## {heading}\n")
        parts.extend(f"{p}\n" for p in paragraphs)
    return "\n".join(parts)


def html_page(title: str, sections: Sequence[Section]) -> str:
    """An HTML page with h1/h2 headings and paragraphs."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for heading, paragraphs in sections:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        body.extend(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>\n'
        f"<body>\n{chr(10).join(body)}\n</body></html>\n"
    )


def write_docx(path: Path, title: str, sections: Sequence[Section], table: Sequence[Sequence[str]] | None = None) -> None:
    """A .docx with Heading 1/2 styles, paragraphs and an optional table."""
    import docx

    document = docx.Document()
    document.add_heading(title, level=1)
    for heading, paragraphs in sections:
        document.add_heading(heading, level=2)
        for p in paragraphs:
            document.add_paragraph(p)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                grid.cell(r, c).text = cell
    document.save(str(path))


def _pdf_text(text: str) -> str:
    encoded = text.encode("cp1252", errors="replace").decode("latin-1")
    return encoded.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_bytes(title: str, sections: Sequence[Section], lines_per_page: int = 48) -> bytes:
    """A text PDF: title at 18pt, headings at 14pt, body at 10pt, wrapped to the page."""
    lines: list[tuple[float, str]] = [(18.0, title), (10.0, "")]
    for heading, paragraphs in sections:
        lines.append((14.0, heading))
        for p in paragraphs:
            lines.extend((10.0, row) for row in textwrap.wrap(p, 95) or [""])
            lines.append((10.0, ""))
    pages = [lines[i : i + lines_per_page] for i in range(0, len(lines), lines_per_page)] or [[]]
    objects: list[bytes] = []
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for i, page in enumerate(pages):
        ops = ["BT", "50 800 Td"]
        for size, text in page:
            ops.append(f"/F1 {size:g} Tf {0:g} {-(size + 6):g} Td ({_pdf_text(text)}) Tj")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Contents {5 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def write_pdf(path: Path, title: str, sections: Sequence[Section]) -> None:
    """Write `pdf_bytes` to a file."""
    path.write_bytes(pdf_bytes(title, sections))
