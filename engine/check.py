"""Consistency check of one collection: what `zhiku check` reports and repairs.

The store is the truth (engine.identity), so the check reads every point
with its vectors, once, under the collection's writer lock, and follows
these steps:

1. The manifest is present and parses, has a fixed BM25 avgdl (format 2),
   names this zhiku's tokenizer, and its embedder dimension is the one every
   dense vector has.
2. Every point is a chunk: its payload names a document, a version and a
   chunk (`chunk_id` of the identity rules, index below `chunk_count`), and
   its id is that chunk's point id. A point that is none of these is an
   orphan; a second point of one chunk id is a duplicate.
3. Every chunk has both vectors: a finite, non-zero dense vector of the
   manifest's dimension, and the BM25 vector a re-encoding of its indexed
   text gives (empty only when the text has no tokens). With avgdl fixed in
   the manifest the encoding is a pure function, so any difference is damage.
4. Every document holds exactly one complete version: `chunk_count` chunks of
   one content hash, and nothing of another hash.
5. No version of the collection is left unfinished: a `C.vN` newer than the
   one the alias C points at was being built by a re-index that was killed
   (engine/reindex.py). Nothing ever read or wrote it; the next re-index
   drops it, and so does `repair`.

`repair` fixes what has a good copy to keep: it drops unfinished versions; deletes orphans, duplicates,
and incomplete or stale versions beside a complete one; rewrites a BM25
vector that differs from its recount; writes a format-1 manifest's mean as
its fixed avgdl. It cannot rebuild a wrong dense vector or a document with
no complete version (no text of the missing chunks is stored), nor choose
between two complete versions (which is newer is not stored; re-running the
ingest or add that was interrupted retires the old one): those are reported
with what to do, and the check stays failed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Iterable

import numpy as np

from zhiku.engine.bm25 import encode_document
from zhiku.engine.errors import ConfigError, NotFound
from zhiku.engine.identity import chunk_id as make_chunk_id
from zhiku.engine.identity import point_id
from zhiku.engine.manifest import Manifest
from zhiku.engine.settings import Settings
from zhiku.engine.stores.base import VectorStore
from zhiku.engine.tokenize import tokenizer
from zhiku.engine.types import Point, SparseVector
from zhiku.engine.writes import collection_lock

# Stored weights are float32; a recount matches within this relative error.
SPARSE_TOLERANCE = 1e-4


class Kind(StrEnum):
    """What is wrong, one value per rule of the module docstring."""

    MANIFEST = "manifest"
    ORPHAN = "orphan"
    DUPLICATE = "duplicate"
    DENSE = "dense"
    SPARSE = "sparse"
    INCOMPLETE = "incomplete"
    STALE = "stale"
    UNFINISHED = "unfinished"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding, with the writes that repair it (none: it needs a re-ingest or a human)."""

    kind: Kind
    detail: str
    doc_id: str = ""
    delete: tuple[str, ...] = ()
    rewrite: tuple[Point, ...] = ()
    manifest: dict[str, Any] | None = None
    drop: str = ""  # a whole physical collection to drop

    @property
    def repairable(self) -> bool:
        return bool(self.delete or self.rewrite or self.manifest is not None or self.drop)


@dataclass(slots=True)
class CheckReport:
    """What a check found in one collection, and what a repair did."""

    collection: str
    points: int = 0
    documents: int = 0
    problems: list[Problem] = field(default_factory=list)
    repaired: list[Problem] = field(default_factory=list)

    @property
    def remaining(self) -> list[Problem]:
        fixed = {id(p) for p in self.repaired}
        return [p for p in self.problems if id(p) not in fixed]

    @property
    def ok(self) -> bool:
        return not self.remaining

    def counts(self) -> dict[str, int]:
        """Problems left, per kind."""
        out: dict[str, int] = defaultdict(int)
        for p in self.remaining:
            out[p.kind.value] += 1
        return dict(out)

    def render(self) -> str:
        """A readable report: one line per problem, repaired ones marked."""
        lines = [f"collection {self.collection!r}: {self.points} chunks, {self.documents} documents"]
        fixed = {id(p) for p in self.repaired}
        for p in self.problems:
            mark = "repaired" if id(p) in fixed else ("repairable" if p.repairable else "NOT repairable")
            who = f" {p.doc_id!r}" if p.doc_id else ""
            lines.append(f"  [{p.kind.value}]{who}: {p.detail} ({mark})")
        left = self.remaining
        if not self.problems:
            lines.append("  consistent")
        elif left:
            lines.append(f"  {len(left)} problem(s) left" + ("; run with --repair" if any(p.repairable for p in left) else ""))
        else:
            lines.append("  all problems repaired")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        fixed = {id(p) for p in self.repaired}
        return {
            "collection": self.collection, "points": self.points, "documents": self.documents, "ok": self.ok,
            "problems": [
                {"kind": p.kind.value, "doc_id": p.doc_id, "detail": p.detail,
                 "repairable": p.repairable, "repaired": id(p) in fixed}
                for p in self.problems
            ],
        }


@dataclass(slots=True)
class _Stored:
    """The identity fields of one valid chunk point."""

    id: str
    doc_id: str
    digest: str
    chunk_id: str
    count: int


def check_collection(store: VectorStore, collection: str, settings: Settings, *, repair: bool = False) -> CheckReport:
    """Check one collection (and with repair=True fix what can be fixed), under its writer lock.

    An alias is checked through the physical collection it stands for.
    """
    from zhiku.engine.reindex import unfinished_versions

    unfinished = unfinished_versions(store, collection)
    collection = store.resolve(collection)
    if not store.has_collection(collection):
        raise NotFound(f"collection {collection!r} does not exist", collection=collection)
    with collection_lock(store, collection).held():
        report = CheckReport(collection)
        manifest = _check_manifest(store, collection, settings, report)
        chunks = _check_points(store, collection, manifest, report)
        _check_documents(chunks, report)
        for name in unfinished:
            report.problems.append(Problem(
                Kind.UNFINISHED, f"version {name!r} ({store.count(name)} chunks) was never switched to: "
                "a re-index was interrupted; drop it (the next re-index also does)", drop=name,
            ))
        if repair:
            _repair(store, collection, report)
        return report


def _check_manifest(store: VectorStore, collection: str, settings: Settings, report: CheckReport) -> Manifest | None:
    raw = store.read_manifest(collection)
    if raw is None:
        report.problems.append(Problem(Kind.MANIFEST, "no manifest: the collection was not built by zhiku"))
        return None
    try:
        manifest = Manifest.from_dict(raw, collection, settings)
    except ConfigError as exc:
        report.problems.append(Problem(Kind.MANIFEST, str(exc)))
        return None
    if "avgdl" not in (raw.get("bm25") or {}):
        report.problems.append(Problem(
            Kind.MANIFEST, f"BM25 avgdl is a running mean, not fixed; fix it at {manifest.bm25.avgdl:.3f}",
            manifest=manifest.to_dict(),
        ))
    try:
        tokenizer(manifest.tokenizer)
    except ConfigError as exc:
        report.problems.append(Problem(Kind.MANIFEST, str(exc)))
        return None
    return manifest  # an older tokenizer this zhiku still reads is fine; `zhiku reindex` upgrades it


def _check_points(
    store: VectorStore, collection: str, manifest: Manifest | None, report: CheckReport
) -> list[_Stored]:
    dim = int(manifest.embedder.get("dim", -1)) if manifest else -1
    by_chunk: dict[str, list[_Stored]] = defaultdict(list)
    for point in store.scroll_points(collection, batch=512):
        report.points += 1
        stored = _identity(point, report)
        if stored is None:
            continue
        by_chunk[stored.chunk_id].append(stored)
        _check_dense(point, dim, stored.doc_id, report)
        if manifest is not None:
            _check_sparse(point, manifest, stored.doc_id, report)
    chunks = []
    for cid, copies in by_chunk.items():
        # The copy at the chunk's own point id is the one writes replace; any other is a duplicate.
        keep = next((c for c in copies if c.id == point_id(cid)), copies[0])
        chunks.append(keep)
        extra = tuple(c.id for c in copies if c is not keep)
        if extra:
            report.problems.append(Problem(
                Kind.DUPLICATE, f"chunk {cid!r} stored {len(copies)} times", keep.doc_id, delete=extra,
            ))
    return chunks


def _identity(point: Point, report: CheckReport) -> _Stored | None:
    """The chunk a point is, or None after reporting it as an orphan."""
    p = point.payload
    doc_id, digest, cid = p.get("doc_id"), p.get("content_hash"), p.get("chunk_id")
    count, index = p.get("chunk_count"), p.get("chunk_index")
    if not all(isinstance(v, str) and v for v in (doc_id, digest, cid)) or not (
        isinstance(count, int) and isinstance(index, int) and 0 <= index < count
        and cid == make_chunk_id(str(doc_id), str(digest), index)
    ):
        report.problems.append(Problem(
            Kind.ORPHAN, f"point {point.id} is no chunk of a document (payload keys {sorted(p)[:8]})",
            str(doc_id or ""), delete=(point.id,),
        ))
        return None
    return _Stored(point.id, str(doc_id), str(digest), str(cid), int(count))


def _check_dense(point: Point, dim: int, doc_id: str, report: CheckReport) -> None:
    v = point.dense
    if v.ndim != 1 or (dim > 0 and v.shape[0] != dim):
        why = f"dense vector of shape {v.shape}, manifest says dim {dim}"
    elif not np.all(np.isfinite(v)) or not np.any(v):
        why = "dense vector is zero or not finite"
    else:
        return
    report.problems.append(Problem(
        Kind.DENSE, f"chunk {point.payload.get('chunk_id')!r}: {why}; re-ingest the document", doc_id,
    ))


def _check_sparse(point: Point, manifest: Manifest, doc_id: str, report: CheckReport) -> None:
    p = point.payload
    title, text = str(p.get("title") or ""), str(p.get("text") or "")
    bm25, tokenize = manifest.bm25, tokenizer(manifest.tokenizer)
    expected = encode_document(tokenize(f"{title}\n{text}" if title else text), bm25.k1, bm25.b, bm25.avgdl)
    if _same_sparse(point.sparse, expected):
        return
    why = "BM25 vector is empty" if not point.sparse.indices else "BM25 vector differs from a recount"
    fixed = Point(point.id, point.dense, expected, dict(p))
    report.problems.append(Problem(Kind.SPARSE, f"chunk {p.get('chunk_id')!r}: {why}", doc_id, rewrite=(fixed,)))


def _same_sparse(a: SparseVector, b: SparseVector) -> bool:
    stored = dict(zip(a.indices, a.values))
    if set(stored) != set(b.indices):
        return False
    return all(math.isclose(stored[i], w, rel_tol=SPARSE_TOLERANCE, abs_tol=1e-6) for i, w in zip(b.indices, b.values))


def _check_documents(chunks: Iterable[_Stored], report: CheckReport) -> None:
    versions: dict[str, dict[str, list[_Stored]]] = defaultdict(lambda: defaultdict(list))
    for c in chunks:
        versions[c.doc_id][c.digest].append(c)
    report.documents = len(versions)
    for doc_id, by_digest in sorted(versions.items()):
        complete = sorted(d for d, cs in by_digest.items() if len({c.count for c in cs}) == 1 and len(cs) == cs[0].count)
        if len(by_digest) == 1 and complete:
            continue
        if not complete:
            have = ", ".join(f"{d[:12]}: {len(cs)} of {max(c.count for c in cs)}" for d, cs in sorted(by_digest.items()))
            report.problems.append(Problem(
                Kind.INCOMPLETE, f"no complete version ({have}); re-ingest the document", doc_id,
            ))
            continue
        # Several complete versions: which is newer is not stored, so keep none by guess.
        if len(complete) > 1:
            report.problems.append(Problem(
                Kind.STALE, f"{len(complete)} complete versions; re-ingest or delete the document", doc_id,
            ))
            continue
        keep = complete[0]
        for digest, cs in sorted(by_digest.items()):
            if digest != keep:
                kind = Kind.INCOMPLETE if digest not in complete else Kind.STALE
                report.problems.append(Problem(
                    kind, f"version {digest[:12]} ({len(cs)} chunks) beside complete version {keep[:12]}",
                    doc_id, delete=tuple(c.id for c in cs),
                ))


def _repair(store: VectorStore, collection: str, report: CheckReport) -> None:
    for problem in report.problems:
        if not problem.repairable:
            continue
        if problem.manifest is not None:
            store.write_manifest(collection, problem.manifest)
        if problem.rewrite:
            store.upsert(collection, list(problem.rewrite))
        if problem.delete:
            store.delete_points(collection, list(problem.delete))
        if problem.drop:
            store.drop_collection(problem.drop)
        report.repaired.append(problem)
    if report.repaired:
        store.flush(collection)
