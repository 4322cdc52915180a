"""Document identity: ids, content hashes, chunk ids, versions and "is it current".

Both ways in (`KnowledgeBase.add_texts` and the file ingest in `zhiku.ingest`)
name and version documents with these functions, so the two can never drift:

1. A document's *version* is its content hash: text (or file bytes), the
   chunking recipe where there is one, and its user metadata.
2. Chunk ids are deterministic, `{doc_id}#{hash[:12]}-{n}`, so a changed
   document gets new ids and an interrupted write, run again, rewrites the
   same points.
3. The store is the truth. A document is *current* when all `chunk_count`
   chunks of one version are present and nothing of another version is
   (`DocState.complete`).
4. A new version is written before the old ones are removed
   (`DocState.stale` names them), so a reader never finds a document missing.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from zhiku.engine.types import Chunk

# Part of every file hash: bump it when ingest's chunking changes its output.
RECIPE_VERSION = "zhiku-ingest:1"
_POINT_NS = uuid.UUID("6f1c2a4e-3b7d-4e59-9a53-0d8e7c1b2a90")


def _metadata_json(metadata: Mapping[str, Any] | None) -> bytes:
    return json.dumps(dict(metadata or {}), sort_keys=True, ensure_ascii=False, default=str).encode()


def text_hash(text: str, metadata: Mapping[str, Any] | None = None) -> str:
    """The version of a plain-text document: its text and metadata."""
    h = hashlib.sha256(text.encode("utf-8"))
    if metadata:
        h.update(_metadata_json(metadata))
    return h.hexdigest()


def file_hash(data: bytes, recipe: str, metadata: Mapping[str, Any] | None = None) -> str:
    """The version of a file: its bytes, the chunking recipe and its user metadata.

    The recipe and metadata are part of it so that new chunk settings or a
    new sidecar re-ingest the file instead of silently keeping the old chunks.
    """
    h = hashlib.sha256(f"{RECIPE_VERSION}|{recipe}|".encode())
    h.update(_metadata_json(metadata))
    h.update(b"|")
    h.update(data)
    return h.hexdigest()


def record_hash(record_digest: str, recipe: str, metadata: Mapping[str, Any] | None = None) -> str:
    """The version of one record inside a container file (a BEIR corpus line)."""
    return file_hash(record_digest.encode(), recipe, metadata)


def text_doc_id(digest: str) -> str:
    """The id of a text added without one: derived from its version."""
    return f"doc-{digest[:16]}"


def file_doc_id(path: Path, root: Path) -> str:
    """A file's document id: its path below the ingest root, '/'-separated, NFC."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
    text = rel.as_posix() if str(rel) != "." else path.name
    return unicodedata.normalize("NFC", text)


def chunk_id(doc_id: str, digest: str, index: int) -> str:
    """Deterministic chunk id: a changed document gets new ids."""
    return f"{doc_id}#{digest[:12]}-{index}"


def point_id(chunk_id: str) -> str:
    """The store's point id for a chunk id (Qdrant wants UUIDs)."""
    return str(uuid.uuid5(_POINT_NS, chunk_id))


def indexed_text(chunk: Chunk) -> str:
    """What both legs index: the title gives every chunk its document's topic."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


@dataclass(slots=True)
class DocState:
    """What the store holds of one document: chunk ids present per version."""

    doc_id: str
    path: str = ""
    chunk_count: dict[str, int] = field(default_factory=dict)
    chunk_ids: dict[str, set[str]] = field(default_factory=dict)

    def add(self, payload: Mapping[str, Any]) -> None:
        """Count one stored chunk's payload."""
        digest = str(payload.get("content_hash", ""))
        self.chunk_count[digest] = int(payload.get("chunk_count", 0))
        self.chunk_ids.setdefault(digest, set()).add(str(payload.get("chunk_id", "")))

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


def doc_states(payloads: Iterable[Mapping[str, Any]]) -> dict[str, DocState]:
    """Per-document state from stored chunk payloads (one pass)."""
    state: dict[str, DocState] = {}
    for payload in payloads:
        doc_id = str(payload.get("doc_id", ""))
        doc = state.get(doc_id)
        if doc is None:
            doc = state[doc_id] = DocState(doc_id, path=str((payload.get("meta") or {}).get("path", "")))
        doc.add(payload)
    return state
