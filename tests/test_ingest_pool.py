"""The supervised parse pool: a hung or dying parser costs one file, not the run."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

from zhiku.ingest.parse import ParseResult
from zhiku.ingest.pool import ParsePool


def _work(task: SimpleNamespace) -> ParseResult:
    # Module level so a spawned worker can import it by name.
    if task.path == "hang":
        time.sleep(60)
    if task.path == "die":
        os._exit(3)
    return ParseResult(task.path, task.doc_id, kind="ok")


def test_timeouts_and_crashes_are_reported_and_the_rest_finish() -> None:
    tasks = [SimpleNamespace(path=p, doc_id=p) for p in ["a", "hang", "b", "die", "c", "d"]]
    started = time.monotonic()
    with ParsePool(2, timeout_s=3, work=_work) as pool:
        results = {r.path: r for r in pool.run(tasks)}
    assert time.monotonic() - started < 40
    assert set(results) == {"a", "hang", "b", "die", "c", "d"}
    assert results["hang"].code == "timeout" and "longer than 3 s" in results["hang"].error
    assert results["die"].code == "crash" and "exit code 3" in results["die"].error
    assert all(results[p].ok and results[p].kind == "ok" for p in "abcd")
