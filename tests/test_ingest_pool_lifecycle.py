"""Parse workers die with their parent, never re-run the caller's script, and a broken pool raises.

Regression tests for issue 12 holes 7 and 8: each runs a real Python
process, as a library user or the server would.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from zhiku.ingest.parse import ParseTask
from zhiku.ingest.pool import ParsePool

pytestmark = pytest.mark.slow  # each test starts real processes

ROOT = Path(__file__).resolve().parents[1]


def _gone(pid: int) -> bool:
    """No such process, or only a zombie left to reap."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


PARENT = """
import sys, time
from zhiku.ingest.pool import ParsePool
if __name__ == "__main__":
    pool = ParsePool(2, 600, work=time.sleep, shared=SHARED)
    pool.start(2)
    print(" ".join(str(w.process.pid) for w in pool._workers), flush=True)
    for _ in pool.run([600, 600]):
        pass
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
# A shared pool (the server's, lent to request threads) relies on the watchdog alone.
@pytest.mark.parametrize("shared", [False, True])
def test_workers_die_when_their_parent_is_killed(tmp_path, shared):
    script = tmp_path / "parent.py"
    script.write_text(f"SHARED = {shared}\n" + PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]  # type: ignore[union-attr]
        assert len(pids) == 2
        time.sleep(1.0)  # the workers are up and sleeping in their task
        assert not any(_gone(p) for p in pids)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(_gone(p) for p in pids):
            time.sleep(0.1)
        alive = [p for p in pids if not _gone(p)]
        assert not alive, f"parse workers outlived their parent: {alive}"
    finally:
        parent.kill()
        for pid in pids if "pids" in locals() else []:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


SCRIPT = """
import json, sys
from zhiku import KnowledgeBase
# No main guard, on purpose: the first thing a library user writes.
kb = KnowledgeBase(DATA, collection="c", embed={"backend": "fake"}, store={"backend": "edge"})
summary = kb.add_files(FOLDER, workers=2)
print(json.dumps({"written": summary.docs_written, "failed": summary.failed, "marker": MARKER}))
kb.close()
"""


def _user_script(tmp_path: Path, files: int = 4) -> tuple[str, Path]:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(files):
        (folder / f"d{i}.txt").write_text(f"Document number {i} talks about topic {i}.\n" * 3)
    marker = tmp_path / "runs.log"
    head = f"DATA, FOLDER, MARKER = {str(tmp_path / 'data')!r}, {str(folder)!r}, {str(marker)!r}\n"
    # Every run of the script's top level leaves a line: workers must not re-run it.
    head += "open(MARKER, 'a').write('ran\\n')\n"
    return head + textwrap.dedent(SCRIPT), marker


def _run(args: list[str], **kwargs: object) -> dict:
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_add_files_at_the_top_of_a_script_without_main_guard(tmp_path):
    source, marker = _user_script(tmp_path)
    script = tmp_path / "user.py"
    script.write_text(source)
    out = _run([sys.executable, str(script)], cwd=tmp_path)
    assert out == {"written": 4, "failed": 0, "marker": str(marker)}
    assert marker.read_text() == "ran\n"  # the workers did not run the script again


def test_add_files_from_a_script_on_stdin(tmp_path):
    source, marker = _user_script(tmp_path)
    out = _run([sys.executable, "-"], input=source, cwd=tmp_path)
    assert out["written"] == 4 and out["failed"] == 0
    assert marker.read_text() == "ran\n"


def test_a_pool_whose_workers_cannot_start_raises(tmp_path):
    from zhiku.ingest.pool import PoolBroken

    tasks = [ParseTask(str(tmp_path / f"f{i}.txt"), f"f{i}", {}, {}, None, ("words",), 1000) for i in range(5)]
    # A warm-up that kills the worker stands for any worker that cannot start.
    with ParsePool(2, 30, warm=functools.partial(os._exit, 3)) as pool:
        with pytest.raises(PoolBroken, match="cannot start"):
            list(pool.run(tasks))
