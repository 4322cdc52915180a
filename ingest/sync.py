"""Incremental sync of a file tree: which stored documents came from which files, what to prune.

Document identity (ids, hashes, chunk ids, "is it current") is
`zhiku.engine.identity`, shared with `KnowledgeBase.add_texts`. This module
adds what only a file tree has: documents grouped by the file they came
from, files that disappeared, and the ledger of container files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from zhiku.engine.identity import DocState


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
