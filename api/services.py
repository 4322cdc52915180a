"""What the server builds once in its lifespan and every request shares.

One `Engine` (one store, one embedder, a KnowledgeBase per collection, and
the LLM: generator and abilities, built lazily, so the first LLM request pays
for loading it), the key store, metrics, the LLM gate and the job runner.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from zhiku.api.errors import scrub_paths
from zhiku.api.jobs import IngestOutcome, JobRunner
from zhiku.api.limits import LLMGate, Work
from zhiku.api.metrics import Metrics
from zhiku.api.security import Auth, KeyStore
from zhiku.engine.errors import InvalidRequest, ZhikuError
from zhiku.engine.engine import Engine
from zhiku.engine.settings import Settings
from zhiku.ingest.pool import ParsePool

if TYPE_CHECKING:
    from zhiku.api.schemas.requests import DocumentIn
    from zhiku.engine.kb import KnowledgeBase
    from zhiku.engine.llm.abilities import LLMService
    from zhiku.engine.llm.base import Generator


class Services:
    """The shared state of one server process."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine | None = None,
        metrics: Metrics | None = None,
        generator: "Generator | None" = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self.keys = KeyStore(settings.data_dir)
        self.auth = Auth(self.keys)
        self.engine = engine if engine is not None else Engine(settings)
        if generator is not None:
            self.engine.use_generator(generator)
        s = settings.server
        self.gate = LLMGate(s.llm_queue, s.llm_workers, s.request_timeout_s, self.metrics)
        self.work = Work(s.max_running_work, s.request_timeout_s)
        self.jobs = JobRunner(settings.data_dir, self.metrics, ttl_s=s.job_ttl_s)
        # Inline uploads parse here, one file at a time under the per-file
        # timeout; the worker starts with the first upload and then stays.
        self.parse_pool = ParsePool(1, s.request_timeout_s, shared=True)
        # The embedding model loads in the background; /readyz says "loading"
        # until it is in memory, so a balancer sends no query that would wait.
        self._embedder_state = "loading"
        self._warm_thread = threading.Thread(target=self._warm_up, name="zhiku-warm-up", daemon=True)

    def start(self) -> None:
        """Begin loading the embedding model and the Chinese dictionary."""
        self._warm_thread.start()

    def _warm_up(self) -> None:
        try:
            self.engine.warm_up()
        except Exception as exc:  # reported by /readyz; requests raise their own error
            self._embedder_state = f"error: {type(exc).__name__}: {exc}"[:300]
        else:
            self._embedder_state = "ok"

    def kb(self, collection: str, create: bool = False) -> "KnowledgeBase":
        return self.engine.kb(collection, create=create)

    def llm(self, collection: str | None) -> "LLMService":
        """LLM abilities, grounded in `collection` (or in nothing when None)."""
        return self.engine.llm(self.kb(collection) if collection is not None else None)

    def drop(self, collection: str) -> None:
        self.engine.drop_collection(collection)

    def ready(self) -> dict[str, str]:
        """Readiness checks: the store answers, the key file parses, the embedder is loaded."""
        checks: dict[str, str] = {}
        try:
            self.engine.list_collections()
            checks["store"] = "ok"
        except Exception as exc:  # readiness reports, it does not raise
            checks["store"] = f"error: {type(exc).__name__}"
        try:
            self.keys.records()
            checks["keys"] = "ok"
        except ZhikuError as exc:
            checks["keys"] = f"error: {exc.message}"
        checks["embedder"] = self._embedder_state
        return checks

    def close(self, own_engine: bool = True) -> None:
        """Finish the running job; close the engine unless someone else owns it."""
        self.jobs.close()
        self.parse_pool.close()
        if own_engine:
            self.engine.close()


def add_text_documents(kb: "KnowledgeBase", documents: Sequence["DocumentIn"]) -> IngestOutcome:
    """Add or replace documents given as text (POST /documents JSON, MCP add_documents): ids for all or none."""
    given = [d.id for d in documents]
    if any(given) and not all(given):
        raise InvalidRequest("give an id for every document or for none")
    metas = [{**d.metadata, "title": d.title, "source": d.source} for d in documents]
    doc_ids = kb.add_texts([d.text for d in documents], ids=given if all(given) else None, metadatas=metas)
    return IngestOutcome(doc_ids=doc_ids, chunks=kb.count({"doc_id": doc_ids}))


def ingest_files(
    kb: "KnowledgeBase",
    folder: Path,
    metadata: Mapping[str, Any],
    background: bool = False,
    pool: ParsePool | None = None,
) -> IngestOutcome:
    """Ingest the uploaded files in `folder` with the ingest pipeline; doc ids are file names.

    Files always parse in a process, under the per-file timeout and crash
    guard. Inline uploads use the server's long-lived `pool`: a pool per
    request cost about 6 s (spawn plus parser warm-up, measured on 2 shared
    cores) against 0.02 s in-thread. Background jobs get a pool of their own
    and optimize at the end. The server's folder is no one's business:
    a document's `path` is its upload name, not where it was saved.
    The ids reported are the ones the run says it stored; an uploaded file
    that gave no document and no error (a `NAME.meta.json`, read as the
    metadata sidecar of NAME) is reported as not ingested.
    """
    from zhiku.ingest.pipeline import IngestOptions, ingest_paths
    from zhiku.ingest.scan import SIDECAR

    options = IngestOptions(
        workers=1, meta=dict(metadata), optimize=background, path_root=folder, pool=None if background else pool
    )
    summary = ingest_paths(kb, [folder], options)
    errors = [{"file": Path(p.path).name, "code": p.code, "error": scrub_paths(p.reason)} for p in summary.errors]
    files = sorted(p for p in folder.iterdir() if p.is_file())
    # Sidecars that some uploaded file used as its metadata are accounted for.
    used = {n for f in files for n in (f.name + SIDECAR, f.stem + SIDECAR) if n != f.name}
    accounted = {Path(p).name for p in summary.stored} | {e["file"] for e in errors} | used
    for path in files:
        if path.name not in accounted:
            reason = (
                f"a name ending in {SIDECAR} is read as the metadata sidecar of a file, not as a document"
                if path.name.endswith(SIDECAR)
                else "not ingested (skipped by the file scan)"
            )
            errors.append({"file": path.name, "code": "skipped", "error": reason})
    return IngestOutcome(
        doc_ids=summary.doc_ids,
        chunks=summary.chunks_embedded + summary.chunks_reused,
        errors=errors,
    )

