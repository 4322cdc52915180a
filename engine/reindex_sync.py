"""Keeping a version a re-index builds in step with the live one (engine/reindex.py's steps 3 to 5).

Documents are compared by their complete version (content hash) in each
collection; one half written (a write in progress) is looked at again later.
Before the switch the new version simply mirrors the old one; after it, a
document is carried only while the new version still holds what it held at
the switch, so a write made there since (newer) is never overwritten.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from zhiku.engine.filters import Match
from zhiku.engine.identity import DocState
from zhiku.engine.types import Chunk
from zhiku.engine.writes import WriteSession

if TYPE_CHECKING:
    from zhiku.engine.kb import KnowledgeBase

# Following the old version after the switch never lasts longer than this
# (a process that never re-resolves the alias would keep it going).
FOLLOW_MAX_S = 60.0
# One look at the old version's first chunks per this many seconds while following.
FOLLOW_POLL_S = 0.25

log = logging.getLogger("zhiku.reindex")


def chunk_from_payload(payload: Mapping[str, Any]) -> Chunk:
    """The Chunk a stored payload was made from (Chunk.payload() inverted)."""
    return Chunk(
        doc_id=str(payload.get("doc_id", "")),
        chunk_id=str(payload.get("chunk_id", "")),
        chunk_index=int(payload.get("chunk_index", 0)),
        text=str(payload.get("text", "")),
        content_hash=str(payload.get("content_hash", "")),
        chunk_count=int(payload.get("chunk_count", 1)),
        title=str(payload.get("title", "")),
        section=str(payload.get("section", "")),
        source=str(payload.get("source", "")),
        metadata=dict(payload.get("meta") or {}),
    )


def complete_documents(kb: "KnowledgeBase", doc_ids: Sequence[str] | None) -> dict[str, str]:
    """doc_id -> content hash of each complete document (of these ids, or all), under no lock."""
    return {d: h for d, s in _states(kb, doc_ids).items() for h in s.chunk_ids if s.complete(h)}


def _states(kb: "KnowledgeBase", doc_ids: Sequence[str] | None) -> dict[str, DocState]:
    return WriteSession(kb.store, kb.collection, kb.settings, kb.embedder, kb.manifest).document_states(
        None if doc_ids is None else list(doc_ids)
    )


def _half_written(kb: "KnowledgeBase") -> list[str]:
    """Documents with no complete version, or a complete one beside others."""
    return [d for d, s in _states(kb, None).items() if not any(s.complete(h) for h in s.chunk_ids)]


def _heads(kb: "KnowledgeBase") -> dict[str, frozenset[str]]:
    """doc_id -> the content hashes its first chunks carry (two while a write is half done): one cheap scan."""
    heads: dict[str, set[str]] = {}
    for _, p in kb.store.scroll(kb.collection, (Match("chunk_index", 0),)):
        heads.setdefault(str(p.get("doc_id")), set()).add(str(p.get("content_hash")))
    return {d: frozenset(h) for d, h in heads.items()}


def _changed(old: "KnowledgeBase", against: Mapping[str, str]) -> tuple[dict[str, str | None], list[str]]:
    """Documents whose old-version state differs from `against` (doc -> hash):
    ({doc: its complete hash, None when deleted}, [docs half written, to look at again])."""
    heads = _heads(old)
    suspects = [d for d in {*heads, *against} if heads.get(d) != frozenset({against[d]} if d in against else ())]
    done = complete_documents(old, suspects) if suspects else {}
    changed: dict[str, str | None] = {}
    pending: list[str] = []
    for d in suspects:
        if d in done:
            if done[d] != against.get(d):
                changed[d] = done[d]
        elif d in heads:
            pending.append(d)  # a write in progress (another process's, or before the lock)
        elif d in against:
            changed[d] = None
    return changed, pending


def _carry(old: "KnowledgeBase", session: WriteSession, changed: Mapping[str, str | None], rechunk: bool) -> None:
    """Make these documents in the session's version what they are in the old one (re-embedded)."""
    gone = [d for d, h in changed.items() if h is None]
    if gone:
        session.delete(gone)
    states = session.document_states([d for d, h in changed.items() if h is not None])
    for doc_id, digest in changed.items():
        if digest is None:
            continue
        if rechunk:
            # The chunks follow the old chunk size; only the original file gives the new
            # one. Rare (a write landing during a chunk-size re-index), and re-ingesting fixes it.
            log.warning("re-index: %r was written during a chunk-size change; copied with its old chunks", doc_id)
        payloads = old.store.scroll(old.collection, (Match("doc_id", doc_id), Match("content_hash", digest)))
        session.write_chunks([chunk_from_payload(p) for _, p in payloads])
        session.retire(doc_id, states.get(doc_id, DocState(doc_id)).stale(digest))


def _apply(mapping: dict[str, str], changed: Mapping[str, str | None]) -> None:
    for d, h in changed.items():
        if h is None:
            mapping.pop(d, None)
        else:
            mapping[d] = h


def catch_up(old: "KnowledgeBase", new: "KnowledgeBase", mirror: dict[str, str], rechunk: bool) -> int:
    """Before the switch: copy what changed in the old version since `mirror` (updated); returns how many.

    Also mends documents the new version holds half: the build's scan met
    them mid-write (or mid-delete) in the old version, so they are in no mirror.
    """
    changed, _ = _changed(old, mirror)
    half = [d for d in _half_written(new) if d not in changed]
    if half:
        now = _states(old, half)
        for d in half:
            state = now.get(d)
            if state is None:
                changed[d] = None  # gone from the old version
            else:
                digest = next((h for h in state.chunk_ids if state.complete(h)), None)
                if digest is not None:
                    changed[d] = digest
                # else still being written there: a later pass (under the lock, none) mends it
    if changed:
        with new.writing() as session:
            _carry(old, session, changed, rechunk)
            session.flush()
        _apply(mirror, changed)
    return len(changed)


def follow(
    old: "KnowledgeBase", new: "KnowledgeBase", mirror: dict[str, str], at_switch: dict[str, str],
    seconds: float, rechunk: bool,
) -> int:
    """After the switch: carry writes other processes still made to the old version; returns how many.

    A document is carried only while the new version still holds what it held
    at the switch (`at_switch`): a write made to the new version since is newer
    and stays. Watching lasts `seconds` after the last change seen in the old
    version, FOLLOW_MAX_S at most.
    """
    if seconds <= 0:
        return 0
    start = last_change = time.monotonic()
    carried = 0
    while True:
        now = time.monotonic()
        final = now - last_change >= seconds or now - start >= FOLLOW_MAX_S
        changed, pending = _changed(old, mirror)
        if changed or pending:
            last_change = now
        if changed:
            with new.writing() as session:
                current = complete_documents(new, list(changed))
                ours = {d: h for d, h in changed.items() if current.get(d) == at_switch.get(d)}
                _carry(old, session, ours, rechunk)
                session.flush()
            carried += len(ours)
            _apply(mirror, changed)
            _apply(at_switch, ours)
        if final:
            if pending:
                log.warning("re-index: %d document(s) still half written in the old version %r after %.0f s: "
                            "not carried", len(pending), old.collection, now - start)
            return carried
        time.sleep(FOLLOW_POLL_S)
