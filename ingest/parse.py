"""The work one parse process does for one file: read, vet, load, chunk.

Everything a task needs travels in `ParseTask` (it is pickled to a spawned
worker); the worker never imports torch or the vector store. Token counting
uses the embedder's own tokenizer file, loaded once per process.
"""

from __future__ import annotations

import functools
import re
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from zhiku.ingest.chunking import ChunkOptions, chunk_elements
from zhiku.ingest.detect import ZipLimits, detect_kind, office_kind
from zhiku.ingest.errors import FileRejected
from zhiku.ingest.model import Piece
from zhiku.engine.identity import file_hash, record_hash
from zhiku.ingest.ocr import OcrOptions

CounterSpec = tuple[str, ...]  # ("words",) or ("hf", "/path/to/tokenizer.json")


@dataclass(slots=True)
class ParseTask:
    """One file to parse, with the settings that decide its chunks."""

    path: str
    doc_id: str
    file_meta: dict[str, Any]
    user_meta: dict[str, Any]
    options: ChunkOptions
    counter: CounterSpec
    max_bytes: int
    zip_limits: ZipLimits = ZipLimits()
    # Documents inside a container already stored complete: key -> hash (no re-chunking).
    known: dict[str, str] = field(default_factory=dict)
    ocr: OcrOptions = OcrOptions()


@dataclass(slots=True)
class DocOut:
    """One parsed document: id, hash, metadata and pieces (None when unchanged)."""

    doc_id: str
    content_hash: str
    title: str
    metadata: dict[str, Any]
    pieces: list[Piece] | None


@dataclass(slots=True)
class ParseResult:
    """What came of one file: its documents, or an error with a reason code."""

    path: str
    doc_id: str
    file_hash: str = ""
    kind: str = ""
    container: bool = False
    docs: list[DocOut] = field(default_factory=list)
    code: str = ""
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error


_LATIN = re.compile(r"[A-Za-z]")
_CJK = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")


def guess_language(text: str) -> str:
    """A cheap script-based language tag: zh, ja, ko, en or und."""
    sample = text[:4000]
    counts = {
        "ja": len(_KANA.findall(sample)),
        "ko": len(_HANGUL.findall(sample)),
        "zh": len(_CJK.findall(sample)),
        "en": len(_LATIN.findall(sample)) / 4,  # ~4 letters per word vs one hanzi per word
    }
    if counts["ja"] and counts["ja"] * 3 >= counts["zh"]:
        return "ja"
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] else "und"


@functools.lru_cache(maxsize=4)
def token_counter(spec: CounterSpec) -> Callable[[str], int]:
    """A token counter built from a picklable spec (cached per process)."""
    if spec and spec[0] == "hf":
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(spec[1])
        tok.no_truncation()
        tok.no_padding()
        return lambda text: len(tok.encode(text, add_special_tokens=False).ids)
    from zhiku.engine.embedders.base import Embedder

    # The base class's word-ish count needs no instance state.
    return functools.partial(Embedder.count_tokens, None)  # type: ignore[arg-type]


def warm_parsers() -> None:
    """Import unstructured and load spaCy now, while the embedder loads in the parent."""
    from zhiku.ingest import offline

    offline.prepare()
    import unstructured.partition.html  # noqa: F401
    import unstructured.partition.md  # noqa: F401
    import unstructured.partition.text  # noqa: F401

    offline.load_spacy()


def parse_file(task: ParseTask) -> ParseResult:
    """Parse and chunk one file; never raises (errors come back in the result)."""
    started = time.perf_counter()
    result = ParseResult(task.path, task.doc_id)
    try:
        _parse_into(task, result)
    except FileRejected as exc:
        result.code, result.error = exc.reason_code, exc.message
    except MemoryError:
        result.code, result.error = "too_large", "out of memory while parsing"
    except RecursionError:
        result.code, result.error = "too_deep", "document structure nested too deeply to parse"
    except Exception as exc:  # noqa: BLE001 - a parser bug must cost one file, not the run
        tail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        result.code, result.error = "parse_error", f"parser failed: {tail[:500]}"
    result.seconds = time.perf_counter() - started
    return result


def _parse_into(task: ParseTask, result: ParseResult) -> None:
    from zhiku.ingest.loaders import LOADERS, OCR_LOADERS

    with open(task.path, "rb") as fh:
        data = fh.read(task.max_bytes + 1)
    if len(data) > task.max_bytes:
        raise FileRejected("file grew past the size limit while being read", code="too_large")
    if not data:
        raise FileRejected("empty file (0 bytes)", code="empty")
    name = task.path.rsplit("/", 1)[-1]
    kind = detect_kind(name, data[:8192])
    if kind == "zip":
        kind = office_kind(name, data, task.zip_limits)
    result.kind = kind
    recipe = task.options.signature()
    result.file_hash = file_hash(data, recipe, task.user_meta)
    docs = OCR_LOADERS[kind](data, name, task.ocr) if kind in OCR_LOADERS else LOADERS[kind](data, name)
    del data
    count = token_counter(task.counter)
    result.container = any(d.key for d in docs)
    for doc in docs:
        if doc.key:
            doc_id = doc.key
            digest = record_hash(doc.content_hash, recipe, task.user_meta)
        else:
            doc_id, digest = task.doc_id, result.file_hash
        meta = {**task.file_meta, **doc.metadata, "type": kind, **task.user_meta}
        title = doc.title or (name.rsplit(".", 1)[0] if not doc.key else "")
        if task.known.get(doc_id) == digest:
            result.docs.append(DocOut(doc_id, digest, title, meta, None))
            continue
        pieces = chunk_elements(doc.elements, count, task.options)
        text = " ".join(p.text for p in pieces[:8])
        meta["language"] = guess_language(text)
        if not pieces and not doc.key:
            raise FileRejected("no text found in the document", code="no_text")
        if pieces:
            result.docs.append(DocOut(doc_id, digest, title, meta, pieces))
    if "replaced_bytes" in (result.docs[0].metadata if result.docs else {}):
        result.warnings.append(
            f"invalid bytes replaced while decoding ({result.docs[0].metadata['replaced_bytes']})"
        )
