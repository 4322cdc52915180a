"""Background ingest jobs: large uploads are saved to disk and ingested in a worker.

Each job is one JSON file under `<data_dir>/jobs/` (atomic writes), so a job's
state survives the request that made it, and any worker process that shares
the data dir can answer GET /jobs/{id}. Jobs left queued or running by a dead
process are marked failed when the next server starts.

Upload folders live under `<data_dir>/uploads/`, named `<pid>-<id>` after
the process that owns them (the id is the job id for jobs). Each is removed when its work
ends (in `finally`); at start, and whenever a job is queued, folders whose
owner is gone are swept, and finished jobs older than `server.job_ttl_s`
are forgotten, so the disk, the job table and jobs/*.json stay bounded.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from zhiku.api.metrics import Metrics
from zhiku.api.schemas.stored import JobRecord
from zhiku.engine.errors import NotFound, ZhikuError

log = logging.getLogger("zhiku.api.jobs")
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._\-\u3400-\u9fff]+")


@dataclass(slots=True)
class IngestOutcome:
    """What one ingest did: document ids, chunks written, per-file errors."""

    doc_ids: list[str] = field(default_factory=list)
    chunks: int | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""  # a summary for jobs that are not uploads (re-index)


def safe_filename(name: str | None, index: int) -> str:
    """A client-given file name reduced to one safe path component."""
    base = os.path.basename((name or "").replace("\\", "/")).strip()
    base = _UNSAFE.sub("_", base).strip("._")[:200]
    return base or f"upload-{index}"


def _alive(pid: int) -> bool:
    """Whether a process with this pid exists (another worker may own the job)."""
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _orphan(name: str) -> bool:
    """Whether an upload folder's owner process is gone (its own work removes it otherwise)."""
    pid = name.split("-", 1)[0]
    return not (pid.isdigit() and (int(pid) == os.getpid() or _alive(int(pid))))


def _now() -> datetime:
    return datetime.now(timezone.utc)


class JobRunner:
    """Runs ingest jobs one at a time in a background thread."""

    def __init__(self, data_dir: Path, metrics: Metrics, workers: int = 1, ttl_s: float = 7 * 24 * 3600.0) -> None:
        self.root = Path(data_dir) / "jobs"
        self.uploads = Path(data_dir) / "uploads"
        self.metrics = metrics
        self.ttl_s = ttl_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zhiku-job")
        self._lock = threading.Lock()
        self._recover()
        self.sweep()

    def _path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.json"

    def _save(self, job: JobRecord) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".job-", dir=self.root)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(job.model_dump_json())
        os.replace(tmp, self._path(job.id))

    def _recover(self) -> None:
        if not self.root.exists():
            return
        for path in self.root.glob("*.json"):
            try:
                job = JobRecord.model_validate_json(path.read_bytes())
            except ValueError:
                continue
            if job.state in ("queued", "running") and not _alive(job.pid):
                job.state, job.finished_at = "failed", _now()
                job.message = "the server stopped before this job finished; upload again"
                self._save(job)

    def sweep(self) -> None:
        """Forget finished jobs past their time; remove upload folders nobody works on."""
        cutoff = _now().timestamp() - self.ttl_s
        for path in self.root.glob("*.json") if self.root.exists() else ():
            try:
                job = JobRecord.model_validate_json(path.read_bytes())
            except ValueError:
                continue
            if job.state not in ("queued", "running") and (job.finished_at or job.created_at).timestamp() < cutoff:
                path.unlink(missing_ok=True)
        for folder in self.uploads.iterdir() if self.uploads.exists() else ():
            if _orphan(folder.name):
                shutil.rmtree(folder, ignore_errors=True)

    def upload_dir(self) -> tuple[str, Path]:
        """A new job id and the folder its uploaded files go to (the caller removes it if no job starts)."""
        self.sweep()
        job_id = uuid.uuid4().hex
        folder = self._folder(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        return job_id, folder

    def _folder(self, token: str) -> Path:
        return self.uploads / f"{os.getpid()}-{token}"

    def inline_dir(self) -> Path:
        """A folder for one inline upload; its name says which process owns it."""
        folder = self._folder(uuid.uuid4().hex)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def submit(
        self, job_id: str, collection: str, files: list[Path], work: Callable[[], IngestOutcome]
    ) -> JobRecord:
        """Queue `work`; the uploaded files are removed when it ends."""
        job = JobRecord(
            id=job_id, collection=collection, files=[f.name for f in files], created_at=_now(), pid=os.getpid()
        )
        self._save(job)
        self._pool.submit(self._run, job, work)
        return job

    def _run(self, job: JobRecord, work: Callable[[], IngestOutcome]) -> None:
        job.state, job.started_at = "running", _now()
        self._save(job)
        try:
            outcome = work()
            job.state = "succeeded" if outcome.doc_ids or not outcome.errors else "failed"
            job.documents, job.chunks, job.errors = len(outcome.doc_ids), outcome.chunks or 0, outcome.errors
            job.message = outcome.message
            self.metrics.ingested(job.collection, len(outcome.doc_ids), outcome.chunks)
            self.metrics.ingest_errors.inc(len(outcome.errors))
        except ZhikuError as exc:
            job.state, job.message = "failed", exc.message
        except Exception as exc:  # a job must never take the worker down
            log.exception("ingest job %s failed", job.id)
            job.state, job.message = "failed", f"internal error: {type(exc).__name__}"
        finally:
            job.finished_at = _now()
            self._save(job)
            self.metrics.jobs.labels(job.state).inc()
            shutil.rmtree(self._folder(job.id), ignore_errors=True)

    def get(self, job_id: str) -> JobRecord:
        """A job's current record; NotFound for unknown ids."""
        path = self._path(job_id)
        if not JOB_ID.match(job_id) or not path.exists():
            raise NotFound(f"no job {job_id!r}", job_id=job_id)
        return JobRecord.model_validate_json(path.read_bytes())

    def close(self) -> None:
        """Let the running job finish; jobs still queued are failed at next start."""
        self._pool.shutdown(wait=True, cancel_futures=True)
