"""Known-bad files: a file that failed is remembered with its content hash and reason.

The next run skips it (and says so, with the remembered reason) unless its
bytes or the settings that read it changed, or the caller asks to retry.
Without this an unchanged corpus with a few broken files re-parses them on
every run: 8 broken files cost 9 s, 27 % of the first run, on every nightly
sync. Parse-stage failures (corrupt, timeout, crash, no text) are
remembered; scan-stage ones (too large, unreadable) are cheap to find again.
The file sits next to the ingest ledger, one per collection, and is written
atomically at the end of a run.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

# Oldest entries go first past this many, so a stream of one-off uploads
# cannot grow the file without bound.
MAX_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class KnownBad:
    """Why a document's file failed, for which bytes, and when."""

    digest: str
    code: str
    reason: str
    at: float


class FailureMemory:
    """Failed files by document id; `known` says whether to skip one this run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, KnownBad] = {}
        self._dirty = False
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            self._entries = {k: KnownBad(**v) for k, v in raw.get("failed", {}).items()}
        except (OSError, ValueError, TypeError, AttributeError):
            self._entries = {}  # missing or damaged: every file gets a fresh try

    def known(self, doc_id: str, digest: str) -> KnownBad | None:
        """The remembered failure of exactly these bytes (and settings), if any."""
        entry = self._entries.get(doc_id)
        return entry if entry is not None and entry.digest == digest else None

    def record(self, doc_id: str, digest: str, code: str, reason: str) -> None:
        """Remember that these bytes failed."""
        if digest:
            self._entries.pop(doc_id, None)
            self._entries[doc_id] = KnownBad(digest, code, reason, round(time.time(), 3))
            self._dirty = True

    def forget(self, doc_id: str) -> None:
        """The document parsed: it is no longer known bad."""
        if self._entries.pop(doc_id, None) is not None:
            self._dirty = True

    def __len__(self) -> int:
        return len(self._entries)

    def save(self) -> None:
        """Write the memory if it changed (atomically: a killed run leaves the old one)."""
        if not self._dirty:
            return
        keep = dict(list(self._entries.items())[-MAX_ENTRIES:])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": 1, "failed": {k: asdict(v) for k, v in keep.items()}},
                                  ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)
        self._dirty = False
