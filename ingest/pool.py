"""A supervised pool of parse processes: one file per worker at a time.

concurrent.futures cannot stop a stuck task, and a worker that dies (a
parser segfault, the OOM killer) breaks the whole executor without saying
which file did it. Here each worker gets one task at a time over its own
pipe, so the pool always knows who is parsing what: a task past its
deadline gets its worker killed and reported as a timeout, a dead worker
gets its file reported as a crash, and a fresh worker takes its place.
Workers are started with 'spawn' (fork after torch has started threads
is unsafe) and import only the parsing code.

Two rules keep workers from outliving or re-running their caller:

- Workers die with their parent: on Linux the kernel kills them when the
  thread that started them ends (prctl PR_SET_PDEATHSIG; a pool is used
  within the thread that made it), and a watchdog thread in each worker
  exits once its parent pid changes (any POSIX system, and the race before
  prctl took effect).
- Workers never re-run the caller's script. 'spawn' normally re-imports
  `__main__` in each child, which re-runs a script that has no main guard
  (so a top-level `kb.add_files(...)` starts itself again, and fails) and
  cannot work at all from stdin. The work is a zhiku function the worker
  imports by name, so the pool starts workers with `__main__` hidden.
  A pool whose workers still cannot start raises PoolBroken instead of
  reporting every file failed.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterable, Iterator

from zhiku.engine.errors import ZhikuError
from zhiku.ingest.parse import ParseResult, ParseTask, parse_file
from zhiku.ingest.report import PageProgress


WARM_ALLOWANCE_S = 120.0
# Workers that die before they are ready, with none ever ready, before the pool gives up.
MAX_FAILED_STARTS = 3
_READY = "zhiku-parse-ready"
_PR_SET_PDEATHSIG = 1
_WATCHDOG_S = 1.0


class PoolBroken(ZhikuError):
    """Parse workers cannot start at all, so no file could be parsed (the server: 503, retry later)."""

    code = "pool_broken"
    # Workers fail to start for passing reasons (memory, process limits) as
    # well as lasting ones; a client retrying after this long finds out which.
    retry_after_s = 30.0


def _die_with_parent(parent_pid: int, with_thread: bool = True) -> None:
    """Make this worker exit when its parent dies (see the module docstring).

    `with_thread` also kills it when the thread that started it ends
    (PR_SET_PDEATHSIG follows that thread): right for a pool used where it
    was made, wrong for a long-lived pool lent to request threads.
    """
    import ctypes
    import os
    import signal
    import sys
    import threading

    if with_thread and sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass  # the watchdog below still works
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(_WATCHDOG_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="zhiku-parent-watchdog", daemon=True).start()


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """Start processes that do not re-import the caller's `__main__` (see the module docstring)."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__spec__", "__file__") if k in main.__dict__}
    with _MAIN_LOCK:
        main.__dict__["__spec__"] = None
        main.__dict__.pop("__file__", None)
        try:
            yield
        finally:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)


_MAIN_LOCK = threading.Lock()


def _worker_main(
    conn: Connection,
    work: Callable[[Any], Any],
    warm: Callable[[], None] | None,
    parent_pid: int | None = None,
    with_thread: bool = True,
) -> None:
    import os
    import signal
    import sys

    if parent_pid is not None:
        _die_with_parent(parent_pid, with_thread)
    # Ctrl-C is the parent's to handle; a worker just stops when its pipe closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # spaCy's thinc imports torch when it can; a parser never needs it, and
    # loading it costs each worker seconds and hundreds of MB.
    sys.modules.setdefault("torch", None)  # type: ignore[arg-type]
    from zhiku.ingest.ocr import set_progress_sink

    # OCR reports pages as it reads them: the pool shows them and restarts the clock.
    set_progress_sink(lambda done, total: conn.send(("pages", done, total)))
    if warm is not None:
        try:
            warm()
        except Exception:  # noqa: BLE001 - a failed warm-up shows again, per file, where it matters
            pass
    conn.send(_READY)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        conn.send(work(task))


@dataclass(slots=True)
class _Worker:
    process: Any
    conn: Connection
    task: ParseTask | None = None
    deadline: float = 0.0
    fresh: bool = True  # its first task also waits for the warm-up
    ready: bool = False  # it has said it started (imported, warmed up)


class ParsePool:
    """Parse tasks in `size` processes; results come back in completion order."""

    def __init__(
        self,
        size: int,
        timeout_s: float,
        work: Callable[[Any], Any] = parse_file,
        warm: Callable[[], None] | None = None,
        start_method: str = "spawn",
        on_pages: Callable[[PageProgress], None] | None = None,
        shared: bool = False,
    ) -> None:
        self.size = max(1, size)
        self.work = work  # a module-level function, so a spawned worker can import it
        self.warm = warm  # run once per worker before its first task
        self.timeout_s = timeout_s
        self.on_pages = on_pages
        self._ctx = mp.get_context(start_method)
        self._workers: list[_Worker] = []
        self._failed_starts = 0
        self._any_ready = False
        self._lending = threading.Lock()
        # A shared pool is lent to one thread after another (`lent`): its
        # workers watch the parent process, not the thread that spawned them.
        self.shared = shared

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_worker_main,
            args=(child, self.work, self.warm, os.getpid(), not self.shared),
            daemon=True,
            name="zhiku-parse",
        )
        with _main_hidden():
            process.start()
        child.close()
        return _Worker(process, parent)

    def _retire(self, worker: _Worker, kill: bool) -> None:
        if kill and worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5)
        worker.conn.close()
        self._workers.remove(worker)

    @contextlib.contextmanager
    def lent(self, on_pages: Callable[[PageProgress], None] | None = None) -> Iterator["ParsePool"]:
        """This long-lived pool for one run at a time (a server's inline uploads).

        Runs queue on a lock. A run that stops early leaves workers mid-task;
        they are killed when it ends, so the next run never gets their results.
        """
        with self._lending:
            self.on_pages = on_pages
            try:
                yield self
            finally:
                self.on_pages = None
                for worker in [w for w in self._workers if w.task is not None]:
                    self._retire(worker, kill=True)

    def start(self, count: int) -> None:
        """Start up to `count` workers now, so they warm up while the caller prepares."""
        while len(self._workers) < min(self.size, count):
            self._workers.append(self._spawn())

    def run(self, tasks: Iterable[ParseTask]) -> Iterator[ParseResult]:
        """Yield one result per task; never raises for a task's failure."""
        pending = deque(tasks)
        self.start(len(pending))
        while pending or any(w.task for w in self._workers):
            for worker in self._workers:
                if worker.task is None and pending:
                    worker.task = pending.popleft()
                    allowance = WARM_ALLOWANCE_S if worker.fresh and self.warm is not None else 0.0
                    worker.deadline = time.monotonic() + self.timeout_s + allowance
                    worker.fresh = False
                    try:
                        worker.conn.send(worker.task)
                    except (OSError, ValueError):
                        pass  # the worker is dead; its sentinel reports it below
            busy = [w for w in self._workers if w.task is not None]
            if not busy:
                continue
            timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout)
            now = time.monotonic()
            for worker in list(busy):
                task = worker.task
                assert task is not None
                if worker.conn in ready:
                    try:
                        result = worker.conn.recv()
                    except (EOFError, OSError):
                        result = None
                    if result == _READY:
                        worker.ready = self._any_ready = True
                        continue
                    if isinstance(result, tuple) and result[:1] == ("pages",):
                        # A multi-page scan's timeout counts from its last page read, not its first.
                        worker.deadline = now + self.timeout_s
                        if self.on_pages is not None:
                            self.on_pages(PageProgress(task.path, result[1], result[2]))
                        continue
                    if result is not None:
                        worker.task = None
                        yield result
                        continue
                if worker.process.sentinel in ready or not worker.process.is_alive():
                    worker.process.join(timeout=5)  # reap it, so the exit code is known
                    code = worker.process.exitcode
                    if not worker.ready:
                        # It died starting up: the file is not to blame; try it on a new worker.
                        self._failed_starts += 1
                        if not self._any_ready and self._failed_starts >= MAX_FAILED_STARTS:
                            raise PoolBroken(
                                f"parse workers cannot start (exit code {code}, {self._failed_starts} tries); "
                                "no file was parsed",
                                exit_code=code,
                            )
                        pending.appendleft(task)
                        self._replace(worker, True)
                        continue
                    self._replace(worker, bool(pending))
                    yield ParseResult(task.path, task.doc_id, code="crash",
                                      error=f"parser process died (exit code {code}) on this file")
                elif now >= worker.deadline:
                    self._replace(worker, bool(pending))
                    yield ParseResult(task.path, task.doc_id, code="timeout",
                                      error=f"parsing took longer than {self.timeout_s:.0f} s (--timeout)")

    def _replace(self, worker: _Worker, respawn: bool) -> None:
        self._retire(worker, kill=True)
        if respawn:
            self._workers.append(self._spawn())

    def close(self) -> None:
        """Stop every worker."""
        for worker in list(self._workers):
            try:
                worker.conn.send(None)
            except (OSError, ValueError):
                pass
        for worker in list(self._workers):
            worker.process.join(timeout=2)
            self._retire(worker, kill=True)

    def __enter__(self) -> "ParsePool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
