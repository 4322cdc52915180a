"""The engine: one store, one embedder and one LLM shared by every collection of a data dir.

The CLI and the HTTP server build one `Engine` from settings and ask it for a
`KnowledgeBase` per collection and for the LLM abilities (`Engine.llm`); a
library user gets one through `KnowledgeBase(path, ...)`, which builds a
private engine. The generator and the abilities are cached here and only
here, under one lock.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from zhiku.engine.embedders import Embedder, build_embedder
from zhiku.engine.errors import NotFound
from zhiku.engine.settings import Settings
from zhiku.engine.stores import build_store
from zhiku.engine.stores.base import VectorStore

if TYPE_CHECKING:
    from zhiku.engine.kb import KnowledgeBase
    from zhiku.engine.llm.abilities import LLMService
    from zhiku.engine.llm.base import Generator


class Engine:
    """Owns the store and the embedder; hands out knowledge bases by collection."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: VectorStore | None = None,
        embedder: Embedder | None = None,
        generator: "Generator | None" = None,
    ) -> None:
        self.settings = settings
        self.store = store if store is not None else build_store(settings)
        self.embedder = embedder if embedder is not None else build_embedder(settings.embed)
        self._kbs: dict[str, KnowledgeBase] = {}
        self._lock = threading.Lock()
        self._generator: Generator | None = generator
        self._llm: dict[str | None, LLMService] = {}
        self._llm_lock = threading.Lock()
        # Runs the dense leg of hybrid searches beside the BM25 leg.
        self.leg_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="zhiku-dense-leg")

    @property
    def generator(self) -> "Generator":
        """The one LLM of this process, built on first use (weights load on its first call)."""
        with self._llm_lock:
            if self._generator is None:
                from zhiku.engine.llm import build_generator

                self._generator = build_generator(self.settings.llm)
            return self._generator

    def use_generator(self, generator: "Generator") -> None:
        """Replace the configured LLM (an app or a test that brings its own)."""
        with self._llm_lock:
            self._generator = generator
            self._llm.clear()

    def llm(self, kb: "KnowledgeBase | None" = None) -> "LLMService":
        """The LLM abilities, grounded in `kb` or in nothing; one per collection, built once."""
        from zhiku.engine.llm.abilities import build_llm

        generator = self.generator
        key = kb.collection if kb is not None else None
        with self._llm_lock:
            service = self._llm.get(key)
            # A collection dropped and made again is a new KnowledgeBase: rebuild over it.
            if service is None or (kb is not None and service.retriever != kb.search):
                service = self._llm[key] = build_llm(self.settings, generator, kb)
            return service

    def warm_up(self) -> None:
        """Load the embedding model and the Chinese dictionary before the first request."""
        from zhiku.engine.tokenize import tokenize

        self.embedder.warm_up()
        tokenize("warm up 预热")

    def kb(self, collection: str, *, create: bool = False) -> "KnowledgeBase":
        """The knowledge base for a collection; NotFound unless it exists or create=True."""
        from zhiku.engine.kb import KnowledgeBase

        with self._lock:
            kb = self._kbs.get(collection)
            if kb is None:
                if not create and not self.store.has_collection(collection):
                    raise NotFound(f"collection {collection!r} does not exist", collection=collection)
                kb = KnowledgeBase._attach(self, collection)
                self._kbs[collection] = kb
            return kb

    def list_collections(self) -> list[str]:
        """Names of all collections, sorted."""
        return sorted(self.store.list_collections())

    def collection_info(self, collection: str) -> dict[str, Any]:
        """Stats and the build manifest of one collection."""
        kb = self.kb(collection)
        return {
            "name": collection,
            "chunks": kb.count(),
            "documents": kb.count_documents(),
            "manifest": kb.manifest.to_dict(),
        }

    def drop_collection(self, collection: str) -> None:
        """Delete a collection and everything in it."""
        with self._lock:
            if not self.store.has_collection(collection):
                raise NotFound(f"collection {collection!r} does not exist", collection=collection)
            self._kbs.pop(collection, None)
            with self._llm_lock:
                self._llm.pop(collection, None)
            self.store.drop_collection(collection)

    def close(self) -> None:
        """Flush and release every collection."""
        with self._lock:
            self._kbs.clear()
            self.leg_pool.shutdown(wait=True)
            self.store.close()
