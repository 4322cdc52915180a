"""Shared fixtures: unit tests cannot reach the network; fakes are the default."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("SCARF_NO_ANALYTICS", "true")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

_LOOPBACK = ("127.", "::1", "localhost", "0.0.0.0")
_real_connect = socket.socket.connect
_real_create_connection = socket.create_connection


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
    elif isinstance(address, (str, bytes)):
        return True  # AF_UNIX path
    else:
        return False
    return host.startswith(_LOOPBACK) or host == "localhost"


class NetworkBlocked(RuntimeError):
    """A test tried to reach a non-loopback address."""


def _guarded_connect(self: socket.socket, address: object) -> None:
    if self.family == socket.AF_UNIX or _is_loopback(address):
        return _real_connect(self, address)
    raise NetworkBlocked(f"network access blocked in tests: {address!r}")


def _guarded_create_connection(address, *args, **kwargs):  # type: ignore[no-untyped-def]
    if not _is_loopback(address):
        raise NetworkBlocked(f"network access blocked in tests: {address!r}")
    return _real_create_connection(address, *args, **kwargs)


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with outbound connections to non-loopback hosts refused."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket, "create_connection", _guarded_create_connection)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or a clean skip where this checkout has none."""
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA
