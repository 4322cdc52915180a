"""The reliability suites' shared parts: their size, the figures they report, the outbound guard.

Each suite runs bounded in `make test` (a few seconds to a minute each) and
at full size under `make reliability`, which sets ZHIKU_RELIABILITY=full and
ZHIKU_RELIABILITY_FIGURES to a JSON-lines file; every suite appends its
figures there and `tests/reliability/figures.py` prints the table of issue 12.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


FULL = os.environ.get("ZHIKU_RELIABILITY") == "full"

# A sitecustomize that refuses and logs every non-loopback connection in the
# process that imports it (put its folder on PYTHONPATH of a child process).
GUARD = '''
import os, socket
_LOG = os.environ["ZHIKU_NET_LOG"]
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
def _loopback(self, address):
    if self.family == socket.AF_UNIX:
        return True
    host = str(address[0]) if isinstance(address, tuple) and address else ""
    return host.startswith(("127.", "::1", "localhost")) or host in ("0.0.0.0", "::ffff:127.0.0.1")
def _refuse(address):
    with open(_LOG, "a") as fh:
        fh.write(f"{os.getpid()} {address!r}\\n")
    raise OSError("outbound connection refused by the zhiku reliability guard")
def _connect(self, address):
    if not _loopback(self, address):
        _refuse(address)
    return _real_connect(self, address)
def _connect_ex(self, address):
    if not _loopback(self, address):
        _refuse(address)
    return _real_connect_ex(self, address)
socket.socket.connect = _connect
socket.socket.connect_ex = _connect_ex
'''


def size(bounded: int, full: int) -> int:
    """A suite's size: bounded in `make test`, full under `make reliability`."""
    return full if FULL else bounded


def record(suite: str, figure: str, **values: int) -> None:
    """Append one suite's figures for `make reliability`'s table (and print them)."""
    row = {"suite": suite, "figure": figure, "values": values}
    print(f"reliability figures: {json.dumps(row)}")
    target = os.environ.get("ZHIKU_RELIABILITY_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


def guarded_env(tmp: Path, **extra: str) -> dict[str, str]:
    """A child-process environment with the outbound guard on, the fake embedder and no user config."""
    guard = tmp / "guard"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(GUARD)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZHIKU_")}
    env.update(
        ZHIKU_EMBED__BACKEND="fake", ZHIKU_LLM__BACKEND="fake", ZHIKU_NET_LOG=str(tmp / "net.log"),
        PYTHONPATH=os.pathsep.join(p for p in (str(guard), env.get("PYTHONPATH", "")) if p),
        ZHIKU_CONFIG=str(tmp / "none.toml"), DO_NOT_TRACK="1",
    )
    env.update(extra)
    return env


def outbound_attempts(tmp: Path) -> list[str]:
    """The connections the guard refused so far."""
    log = tmp / "net.log"
    return log.read_text().splitlines() if log.exists() else []


