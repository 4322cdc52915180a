"""Why one file could not be ingested: a domain error with a short machine code."""

from __future__ import annotations

from zhiku.engine.errors import InvalidRequest


class FileRejected(InvalidRequest):
    """A file is unsupported, corrupt, too large or hostile; the run goes on without it."""

    code = "file_rejected"

    def __init__(self, message: str, code: str = "rejected", **details: object) -> None:
        super().__init__(message, **details)
        self.reason_code = code
