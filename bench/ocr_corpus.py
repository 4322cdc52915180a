"""Write the OCR test corpus: scans of known squad-dev and cmrc-trial paragraphs, plus hostile files.

Nothing binary is committed; this script makes everything from the shared
BEIR sets and a font that installs offline (Debian's fonts-wqy-zenhei,
WenQuanYi Zen Hei, installed by `make install`):

    pages/{zh,en}-{clean,noisy}-N.png   one page each, truth in truth.jsonl
                                        (noisy: Gaussian noise, blur, 2 degree skew)
    formats/                            the same pages as jpg, webp, bmp, a 2-page tiff,
                                        an image-only PDF and one mixed PDF (text page + scan)
    cmrc-scan/ID.png, cmrc-text/ID.txt  cmrc-trial documents as scans and as text
    hostile/                            a 20,000 x 20,000 image, a truncated PNG, a zip
                                        named .png, a PDF whose page takes forever to render

    python bench/ocr_corpus.py OUT [--pages 4] [--cmrc 40]
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zipfile
import zlib
from pathlib import Path

from zhiku.eval import scans

ROOT = Path(__file__).resolve().parents[1]
RETRIEVAL = ROOT.parent / "shared" / "data" / "retrieval"


def paragraphs(name: str) -> list[dict]:
    """The records of a shared BEIR corpus."""
    with (RETRIEVAL / name / "corpus.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def build_pages(out: Path, count: int) -> list[dict]:
    """Clean and noisy one-page scans of `count` paragraphs per language; returns the truth rows."""
    truth = []
    for lang, corpus, cjk in (("zh", "cmrc-trial", True), ("en", "squad-dev", False)):
        texts = scans.sample([r["text"] for r in paragraphs(corpus) if len(r["text"]) > 200], count, seed=17)
        for n, text in enumerate(texts):
            page = scans.render([text[:900]], height=None, cjk=cjk)[0]
            for variant, image in (("clean", page.image), ("noisy", scans.degrade(page.image, seed=n))):
                path = _write(out / "pages" / f"{lang}-{variant}-{n}.png", scans.image_bytes(image))
                truth.append({"file": str(path.relative_to(out)), "lang": lang, "variant": variant, "text": page.text})
    return truth


def build_formats(out: Path) -> None:
    """The same kind of page in every format the loaders accept, plus a mixed PDF."""
    import samples  # beside this script

    zh = scans.render([paragraphs("cmrc-trial")[0]["text"][:300]], height=None)[0].image
    en = scans.render([paragraphs("squad-dev")[0]["text"][:400]], height=None, cjk=False)[0].image
    for fmt, ext in (("JPEG", "jpg"), ("WEBP", "webp"), ("BMP", "bmp")):
        _write(out / "formats" / f"page.{ext}", scans.image_bytes(en, fmt))
    _write(out / "formats" / "book.tiff", scans.tiff_bytes([zh, scans.degrade(en, seed=3)]))
    _write(out / "formats" / "scan.pdf", scans.image_pdf([zh, en]))
    text_pdf = samples.pdf_bytes("Mixed", [("Typed page", [paragraphs("squad-dev")[1]["text"]])])
    _write(out / "formats" / "mixed.pdf", scans.mixed_pdf(text_pdf, [scans.degrade(zh, seed=5)]))


def build_cmrc(out: Path, limit: int) -> list[str]:
    """cmrc-trial documents (title + text) as one scan each and as text; returns their ids."""
    records = paragraphs("cmrc-trial")[:limit]
    for r in records:
        text = f"{r['title']}\n\n{r['text']}"
        _write(out / "cmrc-text" / f"{r['_id']}.txt", text.encode("utf-8"))
        pages = scans.render([r["title"], r["text"]], height=None)
        _write(out / "cmrc-scan" / f"{r['_id']}.png", scans.image_bytes(pages[0].image))
    return [r["_id"] for r in records]


def slow_pdf(depth: int = 12, fanout: int = 6) -> bytes:
    """One page that draws a form that draws itself `fanout` times, `depth` levels down.

    Each level is a different XObject (no cycle for a parser to refuse), so a
    renderer faithfully paints fanout**depth rectangles: billions, for ever.
    """
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"]
    objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
                   b"/Resources << /XObject << /X 5 0 R >> >> >>")
    page_ops = b"q /X Do Q"
    objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(page_ops), page_ops))
    for level in range(depth):
        number = 5 + level
        if level == depth - 1:
            ops, resources = b"0 0 1 1 re f", b"<< >>"
        else:
            ops = b" ".join(b"q 0.9 0 0 0.9 %d %d cm /X Do Q" % (i, i) for i in range(fanout))
            resources = b"<< /XObject << /X %d 0 R >> >>" % (number + 1)
        objects.append(b"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources %s /Length %d >>\n"
                       b"stream\n%s\nendstream" % (resources, len(ops), ops))
    data = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(data))
        data += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(data)
    data += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    data += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    data += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(data)


def huge_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A real, valid PNG of width x height white pixels (about 400 KB compressed, 1.2 GB decoded)."""
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    row = b"\x00" + b"\xff" * width  # filter byte + one grey byte per pixel
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def build_hostile(out: Path) -> dict[str, str]:
    """Hostile scans, each with the reason code it must get."""
    good = scans.image_bytes(scans.render(["A page cut short."], width=600, height=None, cjk=False)[0].image)
    _write(out / "hostile" / "huge.png", huge_png())
    _write(out / "hostile" / "truncated.png", good[: len(good) // 2])
    zipped = out / "hostile" / "zip.png"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("payload.txt", "not an image")
    _write(out / "hostile" / "forever.pdf", slow_pdf())
    return {"huge.png": "too_large", "truncated.png": "corrupt", "zip.png": "unsupported_type",
            "forever.pdf": "timeout"}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--pages", type=int, default=4, help="paragraphs per language for the CER pages")
    ap.add_argument("--cmrc", type=int, default=40, help="cmrc-trial documents to render (256: all)")
    args = ap.parse_args(argv)
    if scans.cjk_font_path() is None:
        sys.exit("fonts-wqy-zenhei is not installed (make install installs it)")
    truth = build_pages(args.out, args.pages)
    (args.out / "truth.jsonl").write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in truth),
                                          encoding="utf-8")
    build_formats(args.out)
    ids = build_cmrc(args.out, args.cmrc)
    hostile = build_hostile(args.out)
    (args.out / "hostile.json").write_text(json.dumps(hostile), encoding="utf-8")
    print(f"{len(truth)} CER pages, {len(ids)} cmrc documents, {len(hostile)} hostile files in {args.out}")


if __name__ == "__main__":
    main()
