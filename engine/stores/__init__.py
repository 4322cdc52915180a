"""Vector-store backends by name: `build_store(settings)` picks `settings.store.backend`."""

from __future__ import annotations

from typing import Callable

from zhiku.engine.errors import AlreadyExists, ConfigError
from zhiku.engine.settings import Settings
from zhiku.engine.stores.base import CollectionSpec, VectorStore

# The backends import their client library inside, so using one never pays for
# loading the other (qdrant-client alone takes most of a second to import).


def _edge(settings: Settings) -> VectorStore:
    from zhiku.engine.stores.edge import EdgeStore

    return EdgeStore(settings.data_dir, settings.store)


def _server(settings: Settings) -> VectorStore:
    from zhiku.engine.stores.server import ServerStore

    return ServerStore(settings.store)


STORES: dict[str, Callable[[Settings], VectorStore]] = {
    "edge": _edge,
    "server": _server,
}


def build_store(settings: Settings) -> VectorStore:
    """The configured vector store; ConfigError for a name no backend has."""
    factory = STORES.get(settings.store.backend)
    if factory is None:
        raise ConfigError(
            f"unknown store backend {settings.store.backend!r}; choose one of {sorted(STORES)}"
        )
    return factory(settings)


def ensure_collection(store: VectorStore, spec: CollectionSpec) -> bool:
    """Create `spec`'s collection unless it exists; True if this call created it.

    Safe under races: replicas that start together may all see no collection
    and all create it; the losers get AlreadyExists, and for them the
    collection now exists, which is all they wanted.
    """
    if store.has_collection(spec.name):
        return False
    try:
        store.create_collection(spec)
    except AlreadyExists:
        return False
    return True


__all__ = ["STORES", "CollectionSpec", "VectorStore", "build_store", "ensure_collection"]
