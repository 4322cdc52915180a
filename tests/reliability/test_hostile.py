"""Hostile input: malformed and adversarial files and requests get a clear per-file error or 4xx.

Files: the corpus of tests/test_ingest_hostile.py plus zip bombs in xlsx and
pptx, PDF bombs (a decompression bomb, a deep object recursion), invalid
UTF-8, NUL bytes, 0-byte files of every type, binaries named .txt and
`.meta.json` files, ingested by the real CLI (guarded: no outbound
connection) with its process pool. Every file must end stored or with a
per-file error; one that ends as neither, or a dead run, is a crash.

Requests: huge and deep bodies, invalid encodings, 100k-character queries,
unknown filters, traversal in ids and names, foreign Origin and Host, made-up
methods, sent in rounds to a real server: each must get a 4xx, the server
stays up, and its memory and open files stay bounded across rounds.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import httpx
import pytest
from api_support import DOCS, fake_settings, running_server
from reliability_support import guarded_env, outbound_attempts, record, size
from test_ingest_hostile import build_corpus

from zhiku.api import create_app
from zhiku.engine.kb import KnowledgeBase

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ZHIKU = str(Path(sys.executable).parent / "zhiku")
SECURITY_FIXES = importlib.util.find_spec("zhiku.api.hosts") is not None


def _office_bomb(path: Path, member: str) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open(member, "w") as fh:
            block = b"\0" * 2**20
            for _ in range(300):
                fh.write(block)


def _pdf(objects: list[bytes]) -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def _pdf_flate_bomb(mb: int) -> bytes:
    stream = zlib.compress(b"BT /F1 12 Tf (a) Tj ET\n" + b" " * (mb * 2**20), 9)
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ])


def _pdf_deep() -> bytes:
    depth = 100_000
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R /Deep " + b"[" * depth + b"]" * depth + b" >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 /Parent 2 0 R >>",  # a cycle, too
        b"<< /Type /Page /Parent 2 0 R /Kids [2 0 R] >>",
    ])


def hostile_files(root: Path, big_mb: int) -> list[str]:
    """Write the corpus; returns the top-level names tried (at least 50)."""
    build_corpus(root)
    extra: dict[str, bytes] = {
        "invalid-utf8.txt": b"\xff\xfe\xfd not utf-8 \xc3\x28 \xa0\xa1 " * 200,
        "invalid-utf8.md": b"# Title \xc0\xaf\n\nbody \xed\xa0\x80 surrogate\n",
        "nul.md": b"# NULs\n\n" + b"text\0" * 2000,
        "nul-json.json": b'{"text": "a\\u0000b", "x": "\0"}',
        "gzip-named.txt": gzip.compress(b"hello " * 10_000),
        "random.txt": os.urandom(65536),
        "random.md": os.urandom(4096),
        "elf.html": b"\x7fELF" + os.urandom(2048),
        # Bounded, the bombs are smaller (a ratio still far past any sane file's), not fewer.
        "bomb.pdf": _pdf_flate_bomb(size(100, 400)),
        "deep.pdf": _pdf_deep(),
        "x.meta.json": b'{"title": "sidecar with no file"}',
        "notes.txt.meta.json": b"{not json",
        ".meta.json": b"{}",
        "lone.csv": b'"unterminated,quote\n' * 100,
        "deep.json": b"[" * 200_000 + b"]" * 200_000,
        "deep.jsonl": b'{"_id": "d", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
        "huge-line.md": b"word" * (size(2**19, 2 * 2**20)),
        "crlf-only.txt": b"\r\n" * 100_000,
        "bidi.txt": "\u202e txt.exe \u202c reversed text".encode(),
        "emoji-name-😀.txt": "an emoji in the name".encode(),
    }
    for ext in ("txt", "md", "pdf", "docx", "xlsx", "pptx", "html", "json", "jsonl", "csv", "eml"):
        extra[f"zero.{ext}"] = b""
    for name, data in extra.items():
        (root / name).write_bytes(data)
    _office_bomb(root / "bomb.xlsx", "xl/worksheets/sheet1.xml")
    _office_bomb(root / "bomb.pptx", "ppt/slides/slide1.xml")
    with (root / "big.txt").open("wb") as fh:
        line = b"a line of a very large text file\n"
        fh.write(line * (big_mb * 2**20 // len(line)))
    os.symlink("loop-b.txt", root / "loop-a.txt")
    os.symlink("loop-a.txt", root / "loop-b.txt")
    return sorted(p.name for p in root.iterdir())


def test_hostile_files(tmp_path: Path) -> None:
    root = tmp_path / "hostile"
    names = hostile_files(root, big_mb=size(21, 100))
    assert len(names) >= 50
    env = guarded_env(tmp_path)
    report = tmp_path / "report.jsonl"
    run = subprocess.run(
        [ZHIKU, "ingest", str(root), "-c", "h", "--data-dir", str(tmp_path / "data"), "--workers", "2",
         "--timeout", "60", "--report", str(report), "--json"],
        env=env, capture_output=True, timeout=900,
    )
    died = run.returncode not in (0, 1)
    errors = {Path(json.loads(line)["path"]).name: json.loads(line) for line in report.read_text().splitlines()} \
        if report.exists() else {}
    with KnowledgeBase(tmp_path / "data", collection="h", embed__backend="fake") as kb:
        stored = {Path(d["metadata"].get("path", "")).name for d in kb.list_documents(limit=10_000)}
    # A sub-folder counts through its files; a sidecar (.meta.json) describes a file and is no document.
    outcome = {n: ("stored" if n in stored else errors[n]["code"] if n in errors else None) for n in names}
    silent = [n for n, o in outcome.items() if o is None and n != "sub" and not n.endswith(".meta.json")]
    crashed = len(names) if died else len(silent)
    record("Hostile files", "tried / crashed", tried=len(names), crashed=crashed)
    assert not died, run.stderr.decode()[-3000:]
    assert silent == [], f"files with no outcome: {silent}"
    assert all(len(e["reason"]) > 10 for e in errors.values())
    assert {"bomb.xlsx", "bomb.pptx", "bomb.docx"} <= set(errors)
    check = subprocess.run([ZHIKU, "check", "-c", "h", "--data-dir", str(tmp_path / "data")],
                           env=env, capture_output=True, timeout=300)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    assert outbound_attempts(tmp_path) == []


def _hostile_requests(url: str) -> list[tuple[str, httpx.Request]]:
    """(label, request): each must be answered with a 4xx."""
    deep = b'{"query": "x", "collection": "docs", "filters": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}"
    cases = [
        ("huge body", httpx.Request("POST", f"{url}/documents", content=b'{"documents": ["' + b"a" * (70 * 2**20) + b'"]}',
                                     headers={"content-type": "application/json"})),
        ("deep body", httpx.Request("POST", f"{url}/search", content=deep, headers={"content-type": "application/json"})),
        ("invalid utf-8 body", httpx.Request("POST", f"{url}/search", content=b'{"query": "\xff\xfe", "collection": "docs"}',
                                              headers={"content-type": "application/json"})),
        ("latin-1 declared", httpx.Request("POST", f"{url}/search", content='{"query": "é"}'.encode("latin-1"),
                                            headers={"content-type": "application/json; charset=latin-1"})),
        ("not json", httpx.Request("POST", f"{url}/search", content=b"query=x", headers={"content-type": "application/json"})),
        ("wrong media type", httpx.Request("POST", f"{url}/search", content=b"<q/>", headers={"content-type": "text/xml"})),
        ("100k query", httpx.Request("POST", f"{url}/search", json={"query": "词" * 100_000, "collection": "docs"})),
        ("100k ask", httpx.Request("POST", f"{url}/ask", json={"question": "q" * 100_000, "collection": "docs"})),
        ("unknown filter op", httpx.Request("POST", f"{url}/search", json={"query": "x", "collection": "docs",
                                                                            "filters": {"year": {"$regex": ".*"}}})),
        ("huge top_k", httpx.Request("POST", f"{url}/search", json={"query": "x", "collection": "docs", "top_k": 10**9})),
        ("traversal in doc id", httpx.Request("GET", f"{url}/documents/..%2F..%2Fetc%2Fpasswd", params={"collection": "docs"})),
        ("traversal in collection", httpx.Request("GET", f"{url}/documents", params={"collection": "../../etc"})),
        ("traversal in new collection", httpx.Request("POST", f"{url}/collections", json={"name": "../evil"})),
        ("traversal in upload name", httpx.Request("POST", f"{url}/documents", params={"collection": "docs"},
                                                    files={"files": ("../../escape.txt", b"")})),
        ("NUL in collection", httpx.Request("GET", f"{url}/collections/a%00b")),
        ("made-up method", httpx.Request("BREW", f"{url}/search")),
        ("made-up method 2", httpx.Request("PURGE", f"{url}/documents")),
        ("unknown job", httpx.Request("GET", f"{url}/jobs/../../keys.json")),
    ]
    # Foreign Origin/Host and $ref in /extract are holes 2 and 3 of issue 12, fixed by the security
    # engineer in the same change that adds api/hosts.py: tried once that has landed.
    if SECURITY_FIXES:
        cases += [
            ("extract remote ref", httpx.Request("POST", f"{url}/extract", json={
                "text": "x", "schema": {"$ref": "http://127.0.0.1:9/s.json"}})),
            ("extract file ref", httpx.Request("POST", f"{url}/extract", json={"text": "x", "schema": {"$ref": "file:///etc/passwd"}})),
            ("foreign Origin", httpx.Request("POST", f"{url}/collections", json={"name": "evil"},
                                              headers={"origin": "http://evil.example"})),
            ("foreign Host", httpx.Request("GET", f"{url}/collections", headers={"host": "evil.example"})),
        ]
    return cases


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_hostile_requests(tmp_path: Path) -> None:
    if not SECURITY_FIXES:
        print("hostile requests: foreign Origin and Host, and $ref in /extract, not tried: the security engineer's Host/Origin guard "
              "(api/hosts.py, issue 12 item 3) is not on this branch yet")
    app = create_app(fake_settings(tmp_path, store="edge"))
    rounds = size(2, 20)
    answers: dict[str, set[int]] = {}
    tried = crashed = 0
    with running_server(app) as url, httpx.Client(timeout=120) as client:
        assert client.post(f"{url}/documents", json={"collection": "docs", "documents": DOCS}).status_code == 201
        fds, rss = [], []
        for _ in range(rounds):
            for label, request in _hostile_requests(url):
                tried += 1
                try:
                    status = client.send(request).status_code
                except httpx.HTTPError:
                    status = 0
                answers.setdefault(label, set()).add(status)
                crashed += not 400 <= status < 500
            assert client.get(f"{url}/healthz").status_code == 200
            fds.append(_open_files())
            rss.append(_rss_mb())
        stored = client.get(f"{url}/documents", params={"collection": "docs"}).json()
    record("Hostile requests", "tried / crashed", tried=tried, crashed=crashed)
    wrong = {label: sorted(s) for label, s in answers.items() if not all(400 <= c < 500 for c in s)}
    assert wrong == {}, f"not a 4xx: {wrong}"
    assert len(stored["documents"]) == len(DOCS)
    # Bounded: after the first round (imports, caches), nothing grows per round.
    assert fds[-1] <= fds[0] + 10, fds
    assert rss[-1] <= rss[0] + 150, rss
