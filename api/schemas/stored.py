"""What the server keeps on disk: API keys and ingest jobs (never sent as is)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Scope = Literal["read", "write", "admin"]
SCOPE_RANK: dict[str, int] = {"read": 0, "write": 1, "admin": 2}
JobState = Literal["queued", "running", "succeeded", "failed"]


class ApiKeyRecord(BaseModel):
    """One key in keys.json: only the sha256 of the secret is stored."""

    id: str
    hash: str
    name: str = ""
    scope: Scope
    collections: list[str]
    created_at: datetime
    revoked: bool = False


class KeyFile(BaseModel):
    """The whole of keys.json."""

    version: int = 1
    keys: list[ApiKeyRecord] = Field(default_factory=list)


class JobRecord(BaseModel):
    """A background ingest job, one JSON file per job under data_dir/jobs/."""

    id: str
    collection: str
    state: JobState = "queued"
    files: list[str] = Field(default_factory=list)
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    documents: int = 0
    chunks: int = 0
    errors: list[dict[str, Any]] = Field(default_factory=list)
    message: str = ""
    pid: int = 0  # the worker process running it, so a restart fails only orphaned jobs
