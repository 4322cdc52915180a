"""What an ingest run tells its caller: the plan, the summary, per-file problems."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(slots=True)
class Problem:
    """One file that was not (fully) ingested, or a warning about one that was."""

    path: str
    code: str
    reason: str
    level: str = "error"  # or "warning": ingested, but something was off
    doc_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PageProgress:
    """OCR of one file has read `done` of its `total` pages."""

    path: str
    done: int
    total: int


@dataclass(slots=True)
class Summary:
    """Counts and timings of one run (or of a plan, when dry)."""

    dry_run: bool = False
    files: int = 0
    new: int = 0
    changed: int = 0
    resumed: int = 0
    unchanged: int = 0
    failed: int = 0
    known_bad: int = 0  # failed before with the same bytes: skipped (--retry-failed parses them)
    docs_written: int = 0
    docs_pruned: int = 0
    docs_removed: int = 0  # records gone from a container file
    chunks_embedded: int = 0
    chunks_reused: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    plan: list[tuple[str, str]] = field(default_factory=list)  # (action, path or doc id)
    problems: list[Problem] = field(default_factory=list)
    # File path -> the ids of the documents from it that are stored and current
    # after the run (written now or already current); failed files are absent.
    stored: dict[str, list[str]] = field(default_factory=dict)

    @property
    def doc_ids(self) -> list[str]:
        """Ids of the documents this run wrote or found current, by file path order."""
        return [d for path in sorted(self.stored) for d in self.stored[path]]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def chunks_per_s(self) -> float:
        return self.chunks_embedded / self.seconds if self.seconds else 0.0

    @property
    def ingested_any(self) -> bool:
        """Some file made it (written now or already current)."""
        return self.new + self.changed + self.resumed + self.unchanged > 0

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("plan", "problems", "stored")}
        out["chunks_per_s"] = round(self.chunks_per_s, 1)
        out["errors"] = len(self.errors)
        return out


def write_report(path: Path, problems: list[Problem]) -> None:
    """Per-file problems as JSON Lines (one object per line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for problem in problems:
            fh.write(json.dumps(problem.as_dict(), ensure_ascii=False) + "\n")


class Observer(Protocol):
    """Hooks a front end uses to show progress; all are called from one thread."""

    def planned(self, summary: Summary, to_parse: int) -> None: ...
    def file_done(self, path: str, ok: bool) -> None: ...
    def chunks_done(self, embedded: int) -> None: ...
    def pages_done(self, progress: PageProgress) -> None: ...


class NullObserver:
    """Shows nothing (library use, tests)."""

    def planned(self, summary: Summary, to_parse: int) -> None:
        pass

    def file_done(self, path: str, ok: bool) -> None:
        pass

    def chunks_done(self, embedded: int) -> None:
        pass

    def pages_done(self, progress: PageProgress) -> None:
        pass
