"""The ingest run: plan against the store, then parse -> embed -> write, overlapped.

Three stages run at once: a process pool parses and chunks files (its own
thread feeds and drains it), the calling thread embeds chunk batches, and a
writer thread BM25-encodes and upserts them and retires old versions. The
run is one write session (`DocumentWriter.writing()`: the collection's
writer lock, held from planning to the last delete), and all its writes
happen on the writer thread, in order, so "new chunks before old ones are
deleted" holds per document however the run is stopped.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from zhiku.engine.embedders.base import Embedder
from zhiku.engine.errors import VersionRetired
from zhiku.engine.identity import DocState, chunk_id, file_hash, indexed_text
from zhiku.engine.types import Chunk
from zhiku.engine.writes import DocumentWriter, WriteSession
from zhiku.ingest.chunking import ChunkOptions
from zhiku.ingest.failures import FailureMemory
from zhiku.ingest.ocr import LOW_CONFIDENCE, OcrOptions, heavy_first_last
from zhiku.ingest.parse import CounterSpec, DocOut, ParseResult, ParseTask, parse_file, warm_parsers
from zhiku.ingest.pool import ParsePool
from zhiku.ingest.report import NullObserver, Observer, PageProgress, Problem, Summary
from zhiku.ingest.scan import FileEntry, ScanIssue, scan
from zhiku.ingest.sync import Ledger, docs_by_path, prune_candidates

CONTAINER_SUFFIXES = (".jsonl", ".ndjson")
WINDOW_BATCHES = 4
NO_UNSTRUCTURED = (".jsonl", ".ndjson", ".json", ".csv", ".tsv")
_ACTION_COUNTERS = {"add": "new", "update": "changed", "resume": "resumed"}


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """How one run behaves; the CLI and KnowledgeBase.add_files build this."""

    workers: int = max(1, (os.cpu_count() or 2) - 1)  # 0: parse in this process
    timeout_s: float = 120.0
    max_file_mb: float = 20.0
    prune: bool = False
    dry_run: bool = False
    meta: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int | None = None  # chunks per embedding batch; None: the embedder's
    optimize: bool = True  # build indexes at the end when anything was written
    retry_failed: bool = False  # parse files that failed before with the same content
    # Record `metadata.path` relative to this folder (API uploads: the server's folder is private).
    path_root: Path | None = None
    # A long-lived pool to parse in (the server's, for inline uploads: spawning
    # one per request costs seconds); its own timeout applies. None: a pool per run.
    pool: ParsePool | None = None


def counter_spec(embedder: Embedder) -> CounterSpec:
    """How a parse worker counts tokens the way this embedder does, without loading it."""
    if type(embedder).count_tokens is Embedder.count_tokens:
        return ("words",)
    path = getattr(embedder, "path", None)
    if path is not None and (Path(path) / "tokenizer.json").is_file():
        return ("hf", str(Path(path) / "tokenizer.json"))
    return ("words",)  # an approximation for embedders without a tokenizer file


def _chunks(doc: DocOut, source: str) -> list[Chunk]:
    pieces = doc.pieces or []
    out = []
    for n, piece in enumerate(pieces):
        meta = dict(doc.metadata)
        meta["section_index"] = piece.section_index
        if piece.parent_section:
            meta["parent_section"] = piece.parent_section
        if piece.pages:
            meta["pages"], meta["page"] = piece.pages, piece.pages[0]
        if piece.kind != "text":
            meta["chunk_kind"] = piece.kind
        if piece.ocr_confidence is not None:
            meta["ocr"], meta["ocr_confidence"] = True, round(piece.ocr_confidence, 3)
            meta["ocr_low_confidence"] = piece.ocr_confidence < LOW_CONFIDENCE
        out.append(Chunk(doc.doc_id, chunk_id(doc.doc_id, doc.content_hash, n), n, piece.text,
                         doc.content_hash, len(pieces), doc.title, piece.section, source, meta))
    return out


class _Tracker:
    """Chunks still to be written per document and documents per file (writer-thread side)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.doc_left: dict[str, int] = {}
        self.doc_file: dict[str, str] = {}
        self.stale: dict[str, tuple[str, ...]] = {}
        self.file_left: dict[str, int] = {}
        self.file_done: dict[str, Callable[[], None]] = {}


class IngestRun:
    """One ingest of some roots into a knowledge base (use `ingest_paths`)."""

    def __init__(
        self, kb: DocumentWriter, roots: Iterable[str | Path], options: IngestOptions, observer: Observer | None
    ) -> None:
        self.kb = kb
        self.roots = [Path(os.path.abspath(r)) for r in roots]
        self.options = options
        self.observer = observer or NullObserver()
        self.chunking = ChunkOptions(kb.settings.chunk.size, kb.settings.chunk.overlap)
        self.recipe = self.chunking.signature()
        self.counter = counter_spec(kb.embedder)
        self.max_bytes = int(options.max_file_mb * 2**20)
        self.summary = Summary(dry_run=options.dry_run)
        self.ledger = Ledger(Path(kb.settings.data_dir) / "ingest-state" / f"{kb.collection}.json")
        self.ocr = OcrOptions.from_settings(kb.settings)
        self.failures = FailureMemory(Path(kb.settings.data_dir) / "ingest-state" / f"{kb.collection}.failed.json")
        self.failure_keys: dict[str, tuple[str, str]] = {}  # path -> (doc id, bytes+settings digest)
        self.tracker = _Tracker()
        self.actions: dict[str, str] = {}
        self.claimed: set[str] = set()
        self._writes: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=3)
        self._writer_error: BaseException | None = None

    # -- planning ----------------------------------------------------------------

    def plan(self, session: WriteSession) -> tuple[list[ParseTask], list[str]]:
        """Scan, hash and compare with the store: tasks to parse and documents to prune."""
        self.state = session.document_states()
        self.by_path = docs_by_path(self.state)
        tasks: list[ParseTask] = []
        seen: set[str] = set()
        for root in self.roots:
            for item in scan(root, self.max_bytes):
                seen.add(item.path if isinstance(item, ScanIssue) else str(item.path))
                if isinstance(item, ScanIssue):
                    self._fail(item.path, item.code, item.reason)
                    continue
                self.summary.files += 1
                task = self._plan_file(item)
                if task is not None:
                    tasks.append(task)
        tasks = heavy_first_last(tasks)
        pruned = prune_candidates(self.state, self.roots, seen) if self.options.prune else []
        self.summary.plan.extend(("delete", d) for d in pruned)
        return tasks, pruned

    def _plan_file(self, entry: FileEntry) -> ParseTask | None:
        path = str(entry.path)
        user_meta = {**entry.sidecar, **self.options.meta}
        try:
            with open(entry.path, "rb") as fh:
                digest = file_hash(fh.read(self.max_bytes + 1), self.recipe, user_meta)
        except OSError as exc:
            self._fail(path, "unreadable", f"cannot read: {exc.strerror or exc}")
            return None
        doc = self.state.get(entry.doc_id)
        from_path = self.by_path.get(path, [])
        if doc is not None and doc.complete(digest):
            self.summary.unchanged += 1
            self.summary.stored[path] = [entry.doc_id]
            return None
        if from_path and path.endswith(CONTAINER_SUFFIXES) and self.ledger.unchanged(path, digest, self.state):
            self.summary.unchanged += 1
            self.summary.stored[path] = list(self.ledger.entries[path].get("docs", {}))
            return None
        if self._known_bad(path, entry.doc_id, digest):
            return None
        action = "resume" if doc is not None and digest in doc.chunk_ids else "update" if doc or from_path else "add"
        self.actions[path] = action
        self.summary.plan.append((action, path))
        known = {d: next(iter(self.state[d].chunk_ids)) for d in from_path if len(self.state[d].chunk_ids) == 1}
        shown = os.path.relpath(path, self.options.path_root) if self.options.path_root is not None else path
        file_meta = {"path": shown, "size": entry.size, "mtime": round(entry.mtime, 3)}
        return ParseTask(path, entry.doc_id, file_meta, user_meta, self.chunking, self.counter,
                         self.max_bytes, known={d: h for d, h in known.items() if self.state[d].complete(h)},
                         ocr=self.ocr)

    def _known_bad(self, path: str, doc_id: str, digest: str) -> bool:
        """Skip a file that failed before with these bytes and settings (unless retrying)."""
        key = f"{digest}|{self.ocr.signature()}"
        self.failure_keys[path] = (doc_id, key)
        bad = None if self.options.retry_failed else self.failures.known(doc_id, key)
        if bad is None:
            return False
        self.summary.known_bad += 1
        self.summary.problems.append(Problem(
            path, bad.code, f"{bad.reason} (failed before with the same content; skipped, "
            "--retry-failed parses it again)", doc_id=doc_id))
        return True

    def _fail(self, path: str, code: str, reason: str, doc_id: str = "") -> None:
        self.summary.failed += 1
        self.summary.problems.append(Problem(path, code, reason, doc_id=doc_id))

    # -- running -----------------------------------------------------------------

    def run(self) -> Summary:
        """Plan, then (unless dry) execute; returns the summary."""
        started = time.perf_counter()
        with self.kb.writing() as session:
            self.session = session
            tasks, pruned = self.plan(session)
            self.observer.planned(self.summary, len(tasks))
            if not self.options.dry_run:
                self._execute(tasks)
                if pruned:
                    session.delete(pruned)
                    self.summary.docs_pruned = len(pruned)
                self.ledger.save()
                self.failures.save()
                if self.summary.docs_written or pruned or self.summary.docs_removed:
                    session.optimize() if self.options.optimize else session.flush()
        self.summary.seconds = time.perf_counter() - started
        return self.summary

    def _execute(self, tasks: list[ParseTask]) -> None:
        if not tasks:
            return
        parsed: queue.Queue[ParseResult | BaseException | None] = queue.Queue(maxsize=64)
        stop = threading.Event()
        parser = threading.Thread(target=self._parse_stage, args=(tasks, parsed, stop), daemon=True)
        writer = threading.Thread(target=self._write_stage, daemon=True)
        parser.start()
        writer.start()
        self.kb.embedder.warm_up()  # loads the model while the parse workers start
        batch_size = self.options.batch_size or max(self.kb.embedder.batch_size, 32)
        # Embed a window of several batches sorted by length: batches of similar
        # lengths waste little on padding, which is most of a transformer's cost.
        window = batch_size * WINDOW_BATCHES
        batch: list[Chunk] = []
        try:
            while True:
                item = parsed.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, PageProgress):
                    self.observer.pages_done(item)
                    continue
                batch.extend(self._accept(item))
                if len(batch) >= window:
                    self._embed_window(batch[:window], batch_size)
                    del batch[:window]
            if batch:
                self._embed_window(batch, batch_size)
        finally:
            stop.set()
            self._put(None)
            writer.join()
            parser.join(timeout=10)
        if self._writer_error is not None:
            raise self._writer_error

    def _parse_stage(self, tasks: list[ParseTask], out: queue.Queue, stop: threading.Event) -> None:
        try:
            if self.options.workers == 0:  # in-process: tiny jobs and tests, no timeout guard
                for task in tasks:
                    out.put(parse_file(task))
                out.put(None)
                return
            if self.options.pool is not None:
                lent: contextlib.AbstractContextManager[ParsePool] = self.options.pool.lent(on_pages=out.put)
            else:
                plain = all(t.path.endswith(NO_UNSTRUCTURED) for t in tasks)
                warm = None if plain else warm_parsers
                size = min(self.options.workers, len(tasks))
                lent = ParsePool(size, self.options.timeout_s, warm=warm, on_pages=out.put)
            with lent as pool:
                for result in pool.run(tasks):
                    out.put(result)
                    if stop.is_set():
                        return
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread to raise
            out.put(exc)
        out.put(None)

    def _accept(self, result: ParseResult) -> list[Chunk]:
        """Register a parsed file's documents; returns the chunks still to embed."""
        self.observer.file_done(result.path, result.ok)
        if not result.ok:
            self._fail(result.path, result.code, result.error, result.doc_id)
            self.failures.record(*self.failure_keys.get(result.path, ("", "")), result.code, result.error)
            return []
        self.failures.forget(result.doc_id)
        counter = _ACTION_COUNTERS[self.actions.get(result.path, "add")]
        setattr(self.summary, counter, getattr(self.summary, counter) + 1)
        for warning in result.warnings:
            self.summary.problems.append(Problem(result.path, "warning", warning, level="warning"))
        source = result.doc_id
        todo: list[Chunk] = []
        docs: list[DocOut] = []
        for doc in result.docs:
            if doc.doc_id in self.claimed:
                self.summary.problems.append(Problem(result.path, "duplicate_id",
                    f"document id {doc.doc_id!r} already came from another file in this run; skipped",
                    doc_id=doc.doc_id))
                continue
            self.claimed.add(doc.doc_id)
            docs.append(doc)
        current = {d.doc_id: d.content_hash for d in docs}
        removed = [d for d in self.by_path.get(result.path, []) if d not in current] if result.container else []
        with self.tracker.lock:
            self.tracker.file_left[result.path] = sum(1 for d in docs if d.pieces is not None)
            self.tracker.file_done[result.path] = lambda: self._finish_file(result, current, removed)
        ready: list[str] = []
        for doc in docs:
            if doc.pieces is None:
                continue
            known = self.state.get(doc.doc_id, DocState(doc.doc_id))
            chunks = [c for c in _chunks(doc, source) if c.chunk_id not in known.chunk_ids.get(doc.content_hash, ())]
            self.summary.chunks_reused += len(doc.pieces) - len(chunks)
            self.summary.docs_written += 1
            with self.tracker.lock:
                self.tracker.doc_left[doc.doc_id] = len(chunks)
                self.tracker.doc_file[doc.doc_id] = result.path
                self.tracker.stale[doc.doc_id] = known.stale(doc.content_hash)
            if chunks:
                todo.extend(chunks)
            else:
                ready.append(doc.doc_id)
        if ready or self.tracker.file_left[result.path] == 0:
            self._put(("finish", ready, result.path))
        return todo

    def _embed_window(self, chunks: list[Chunk], batch_size: int) -> None:
        ordered = sorted(chunks, key=lambda c: len(c.text) + len(c.title))
        for i in range(0, len(ordered), batch_size):
            self._embed(ordered[i : i + batch_size])

    def _embed(self, chunks: list[Chunk]) -> None:
        t0 = time.perf_counter()
        dense = self.kb.embedder.embed_documents([indexed_text(c) for c in chunks])
        self.summary.embed_seconds += time.perf_counter() - t0
        self.summary.chunks_embedded += len(chunks)
        self._put(("write", chunks, dense))
        self.observer.chunks_done(len(chunks))

    def _put(self, item: tuple[Any, ...] | None) -> None:
        while True:
            if self._writer_error is not None and item is not None:
                raise self._writer_error
            try:
                self._writes.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    # -- writing (writer thread only) -----------------------------------------------

    def _write_stage(self) -> None:
        try:
            while (item := self._writes.get()) is not None:
                if item[0] == "write":
                    _, chunks, dense = item
                    self.session.write_chunks(chunks, dense)
                    done = self._count_written(chunks)
                    self._finish_docs(done)
                else:
                    _, ready, path = item
                    self._finish_docs(ready, path)
        except BaseException as exc:  # noqa: BLE001 - raised again on the main thread
            self._writer_error = exc
            while self._writes.get() is not None:
                pass

    def _count_written(self, chunks: list[Chunk]) -> list[str]:
        done = []
        with self.tracker.lock:
            for c in chunks:
                self.tracker.doc_left[c.doc_id] -= 1
                if self.tracker.doc_left[c.doc_id] == 0:
                    done.append(c.doc_id)
        return done

    def _finish_docs(self, doc_ids: list[str], path: str | None = None) -> None:
        files = {path} if path else set()
        for doc_id in doc_ids:
            self.session.retire(doc_id, self.tracker.stale.pop(doc_id, ()))
            with self.tracker.lock:
                file = self.tracker.doc_file.pop(doc_id)
                self.tracker.file_left[file] -= 1
            files.add(file)
        for file in files:
            with self.tracker.lock:
                finished = self.tracker.file_left.get(file, 0) <= 0 and file in self.tracker.file_done
                callback = self.tracker.file_done.pop(file) if finished else None
            if callback is not None:
                callback()

    def _finish_file(self, result: ParseResult, current: dict[str, str], removed: list[str]) -> None:
        if removed:
            self.session.delete(removed)
            self.summary.docs_removed += len(removed)
        self.summary.stored[result.path] = list(current)
        if result.container:
            self.ledger.record(result.path, result.file_hash, current)


def ingest_paths(
    kb: DocumentWriter, paths: Iterable[str | Path], options: IngestOptions | None = None, observer: Observer | None = None
) -> Summary:
    """Ingest files and folders into a knowledge base; see IngestOptions."""
    paths = list(paths)
    try:
        return IngestRun(kb, paths, options or IngestOptions(), observer).run()
    except VersionRetired:  # raised as the run took its lock, before it wrote: run on the live version
        return ingest_paths(kb.live(), paths, options, observer)
