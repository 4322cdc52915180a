"""Identity and incremental sync: what is stored, what changed, what to do.

The store is the truth. A document is *complete* when all `chunk_count`
chunks of its current content hash are present and nothing of another
hash is. New versions are written before old ones are deleted, and chunk
ids are deterministic (`{doc_id}#{hash[:12]}-{n}`), so a run killed at any
point and run again converges on exactly what a clean run writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from zhiku.engine.filters import Match, MatchAny

RECIPE_VERSION = "zhiku-ingest:1"


def doc_id_for(path: Path, root: Path) -> str:
    """A file's document id: its path below the ingest root, '/'-separated, NFC."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
    text = rel.as_posix() if str(rel) != "." else path.name
    return unicodedata.normalize("NFC", text)


def chunk_id(doc_id: str, content_hash: str, index: int) -> str:
    """Deterministic chunk id: a changed document gets new ids."""
    return f"{doc_id}#{content_hash[:12]}-{index}"


def content_hash(data: bytes, recipe: str, metadata: Mapping[str, Any] | None = None) -> str:
    """Hash of a file's bytes, the chunking recipe and its user metadata.

    The recipe and metadata are part of it so that new chunk settings or a
    new sidecar re-ingest the file instead of silently keeping the old chunks.
    """
    h = hashlib.sha256(f"{RECIPE_VERSION}|{recipe}|".encode())
    h.update(json.dumps(dict(metadata or {}), sort_keys=True, ensure_ascii=False, default=str).encode())
    h.update(b"|")
    h.update(data)
    return h.hexdigest()


def record_hash(record_digest: str, recipe: str, metadata: Mapping[str, Any] | None = None) -> str:
    """Hash of one record inside a container file (a BEIR corpus line)."""
    return content_hash(record_digest.encode(), recipe, metadata)


@dataclass(slots=True)
class DocState:
    """What the store holds of one document: chunk ids present per content hash."""

    doc_id: str
    path: str = ""
    chunk_count: dict[str, int] = field(default_factory=dict)
    chunk_ids: dict[str, set[str]] = field(default_factory=dict)

    def complete(self, digest: str) -> bool:
        """All chunks of this version present and no other version left."""
        present = self.chunk_ids.get(digest)
        return (
            present is not None
            and len(present) == self.chunk_count.get(digest, -1)
            and set(self.chunk_ids) == {digest}
        )

    def stale(self, digest: str) -> tuple[str, ...]:
        """Content hashes of other versions still stored."""
        return tuple(sorted(h for h in self.chunk_ids if h != digest))


def read_state(store: Any, collection: str) -> dict[str, DocState]:
    """Scan a collection's payloads once into per-document state."""
    state: dict[str, DocState] = {}
    if not store.has_collection(collection):
        return state
    for _, payload in store.scroll(collection, (), 1024):
        doc_id = str(payload.get("doc_id", ""))
        digest = str(payload.get("content_hash", ""))
        doc = state.get(doc_id)
        if doc is None:
            doc = state[doc_id] = DocState(doc_id, path=str((payload.get("meta") or {}).get("path", "")))
        doc.chunk_count[digest] = int(payload.get("chunk_count", 0))
        doc.chunk_ids.setdefault(digest, set()).add(str(payload.get("chunk_id", "")))
    return state


def docs_by_path(state: Mapping[str, DocState]) -> dict[str, list[str]]:
    """Document ids grouped by the file they came from."""
    out: dict[str, list[str]] = {}
    for doc in state.values():
        if doc.path:
            out.setdefault(doc.path, []).append(doc.doc_id)
    return out


def under(path: str, roots: Iterable[Path]) -> bool:
    """Whether a stored absolute path lies inside one of the ingest roots."""
    for root in roots:
        text = str(root)
        if path == text or path.startswith(text.rstrip(os.sep) + os.sep):
            return True
    return False


def prune_candidates(
    state: Mapping[str, DocState], roots: Iterable[Path], seen_paths: set[str]
) -> list[str]:
    """Documents from files under the roots that no longer exist."""
    roots = list(roots)
    return sorted(
        doc.doc_id
        for doc in state.values()
        if doc.path and doc.path not in seen_paths and under(doc.path, roots)
    )


def delete_stale(store: Any, collection: str, doc_id: str, hashes: Iterable[str]) -> None:
    """Remove the old versions of a document (after its new one is fully written)."""
    hashes = tuple(hashes)
    if hashes:
        store.delete_where(collection, (Match("doc_id", doc_id), MatchAny("content_hash", hashes)))


class Ledger:
    """Per-file hashes of container files (many documents in one file), a pure speed hint.

    It lets an unchanged BEIR corpus be skipped without parsing it. It is only
    written after a file is fully stored and every entry is re-checked
    against the store, so a stale or missing ledger costs a parse, never data.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.entries: dict[str, dict[str, Any]] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.entries = {}

    def unchanged(self, file_path: str, file_hash: str, state: Mapping[str, DocState]) -> bool:
        """The container is as last ingested and all its documents are still complete."""
        entry = self.entries.get(file_path)
        if not entry or entry.get("hash") != file_hash:
            return False
        docs: dict[str, str] = entry.get("docs", {})
        return all(d in state and state[d].complete(h) for d, h in docs.items())

    def record(self, file_path: str, file_hash: str, docs: Mapping[str, str]) -> None:
        self.entries[file_path] = {"hash": file_hash, "docs": dict(docs)}

    def forget(self, file_path: str) -> None:
        self.entries.pop(file_path, None)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries, ensure_ascii=False))
        os.replace(tmp, self.path)
