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


def test_a_lent_pool_serves_runs_from_several_threads_and_drops_unfinished_work() -> None:
    """The server's long-lived pool: threads take turns; a run left early leaves no stray result."""
    import threading
    import time as _time

    from zhiku.ingest.pool import ParsePool

    with ParsePool(2, 30, work=_echo, shared=True) as pool:
        out: list[list[object]] = []

        def one_run(tag: str) -> None:
            with pool.lent() as lent:
                out.append([r for r in lent.run([tag])])

        threads = [threading.Thread(target=one_run, args=(t,)) for t in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(r[0] for r in out) == ["a", "b"]
        started = _time.monotonic()
        with pool.lent() as lent:
            runner = lent.run(["fast", "slow"])
            assert next(runner) == "fast"  # "slow" is still on the other worker
        runner.close()
        with pool.lent() as lent:
            assert list(lent.run(["c"])) == ["c"]  # never the abandoned "slow"
        assert _time.monotonic() - started < 4


def _echo(task: object) -> object:
    import time as _time

    if task == "slow":
        _time.sleep(5)
    elif task == "fast":
        _time.sleep(0.2)
    return task
