"""Backends by name: each swappable layer keeps a dict of factories; this looks one up."""

from __future__ import annotations

from typing import Mapping, TypeVar

from zhiku.engine.errors import ConfigError

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: str, what: str) -> T:
    """The factory registered under `name`; ConfigError listing the known names otherwise."""
    try:
        return registry[name]
    except KeyError:
        raise ConfigError(f"unknown {what} {name!r}; known: {sorted(registry)}") from None
