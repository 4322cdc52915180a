"""The library's KnowledgeBase: the engine's, plus file ingest (`add_files`).

`zhiku.engine` never imports `zhiku.ingest`; this class is where the two
meet for library users: `from zhiku import KnowledgeBase`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from zhiku.engine.kb import KnowledgeBase as EngineKnowledgeBase
from zhiku.ingest.pipeline import IngestOptions, ingest_paths
from zhiku.ingest.report import Summary


class KnowledgeBase(EngineKnowledgeBase):
    """One collection: add texts or files, search, ask, delete; usable as a context manager."""

    def add_files(
        self,
        paths: str | Path | Sequence[str | Path],
        *,
        metadata: Mapping[str, Any] | None = None,
        prune: bool = False,
        dry_run: bool = False,
        workers: int | None = None,
    ) -> Summary:
        """Ingest files and folders incrementally (zhiku.ingest); returns the run's summary."""
        options = IngestOptions(
            meta=dict(metadata or {}), prune=prune, dry_run=dry_run,
            **({} if workers is None else {"workers": workers}),
        )
        return ingest_paths(self, [paths] if isinstance(paths, (str, Path)) else list(paths), options)


def read_files(kb: EngineKnowledgeBase, roots: Sequence[str | Path]) -> Summary:
    """Ingest files into any knowledge base: how a re-index with a new chunk size re-reads them."""
    return ingest_paths(kb, list(roots), IngestOptions())
