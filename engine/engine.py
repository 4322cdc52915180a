"""The engine: one store, one embedder and one LLM shared by every collection of a data dir.

The CLI and the HTTP server build one `Engine` from settings and ask it for a
`KnowledgeBase` per collection and for the LLM abilities (`Engine.llm`); a
library user gets one through `KnowledgeBase(path, ...)`, which builds a
private engine. The generator and the abilities are cached here and only
here, under one lock.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from zhiku.engine.embedders import Embedder, build_embedder
from zhiku.engine.errors import NotFound
from zhiku.engine.settings import Settings
from zhiku.engine.stores import build_store
from zhiku.engine.stores.base import VectorStore, version_of

if TYPE_CHECKING:
    from zhiku.engine.kb import KnowledgeBase
    from zhiku.engine.llm.abilities import LLMService
    from zhiku.engine.llm.base import Generator

# How long a cached knowledge base trusts the alias it resolved before asking
# the store again: a re-index run by another process (or another replica on
# the server store) is seen within this time; one run here is seen at once.
ALIAS_RECHECK_S = 2.0


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
        self._checked: dict[str, float] = {}  # collection -> when its alias was last resolved
        self._embedders: dict[tuple[str, str, int], Embedder] = {}
        self._lock = threading.Lock()
        self._embedders_lock = threading.Lock()
        self._generator: Generator | None = generator
        self._llm: dict[str | None, LLMService] = {}  # by physical collection
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
        """Load the embedding model, the Chinese dictionary and name tagger, and CC-CEDICT before the first request."""
        from zhiku.engine.dictionary import cedict
        from zhiku.engine.query import analyse
        from zhiku.engine.tokenize import tokenize

        self.embedder.warm_up()
        tokenize("warm up 预热")
        analyse("张伟是谁")  # a Chinese query loads jieba's part-of-speech model (engine/query.py names)
        if self.settings.retrieval.cross_lingual and self.settings.retrieval.dictionary_translation:
            cedict()  # about a second: the bilingual dictionary of cross-lingual questions

    def kb(self, collection: str, *, create: bool = False) -> "KnowledgeBase":
        """The knowledge base for a collection; NotFound unless it exists or create=True.

        A collection re-indexed behind an alias gets a new KnowledgeBase once the
        alias moves; requests already holding the old one finish on the old
        version, so no request ever mixes two models.
        """
        from zhiku.engine.kb import KnowledgeBase

        with self._lock:
            kb = self._kbs.get(collection)
            now = time.monotonic()
            if kb is not None and now - self._checked.get(collection, 0.0) > ALIAS_RECHECK_S:
                self._checked[collection] = now
                if self.store.resolve(collection) != kb.collection:
                    kb = None
            if kb is None:
                physical = self.store.resolve(collection)
                if not create and not self.store.has_collection(physical):
                    raise NotFound(f"collection {collection!r} does not exist", collection=collection)
                kb = KnowledgeBase._attach(self, collection)
                self._kbs[collection] = kb
                self._checked[collection] = now
            return kb

    def forget(self, collection: str) -> None:
        """Drop the cached knowledge base, so the next kb() resolves the alias again."""
        with self._lock:
            self._kbs.pop(collection, None)

    def embedder_for(self, collection: str, physical: str, built: dict[str, Any] | None) -> Embedder:
        """The embedder for a collection: the configured one, or for a re-indexed
        collection (an alias) the model it was re-indexed with, as its manifest records."""
        if (
            built is None
            or physical == collection
            or (built.get("model_id") == self.embedder.model_id and built.get("dim") == self.embedder.dim)
        ):
            return self.embedder
        key = (str(built.get("backend")), str(built.get("model_id")), int(built.get("dim", 0)))
        with self._embedders_lock:  # kb() holds self._lock while it calls this
            if key not in self._embedders:
                self._embedders[key] = embedder_from_manifest(self.settings, built)
            return self._embedders[key]

    def list_collections(self) -> list[str]:
        """Names users see, sorted: aliases and plain collections, not the versions behind aliases."""
        aliases = self.store.aliases()
        physical = self.store.list_collections()
        # A version is hidden once its base name exists (also while a first re-index builds it).
        bases = set(aliases) | set(physical)
        names = set(aliases)
        for name in physical:
            if name not in aliases.values() and not any(version_of(name, b) is not None for b in bases):
                names.add(name)
        return sorted(names)

    def versions(self, collection: str) -> list[str]:
        """Every physical collection of a name: itself if plain, and each `<name>.vN`."""
        return [
            n for n in self.store.list_collections() if n == collection or version_of(n, collection) is not None
        ]

    def collection_info(self, collection: str) -> dict[str, Any]:
        """Stats and the build manifest of one collection."""
        kb = self.kb(collection)
        info = {
            "name": collection,
            "chunks": kb.count(),
            "documents": kb.count_documents(),
            "manifest": kb.manifest.to_dict(),
        }
        if kb.collection != collection:
            info["version"] = kb.collection
        return info

    def drop_collection(self, collection: str) -> None:
        """Delete a collection and everything in it (every version behind its alias)."""
        with self._lock:
            versions = self.versions(collection)
            if not versions:
                raise NotFound(f"collection {collection!r} does not exist", collection=collection)
            self._kbs.pop(collection, None)
            self.store.delete_alias(collection)
            for name in versions:
                with self._llm_lock:
                    self._llm.pop(name, None)
                self.store.drop_collection(name)

    def close(self) -> None:
        """Flush and release every collection."""
        with self._lock:
            self._kbs.clear()
            self.leg_pool.shutdown(wait=True)
            self.store.close()


def embedder_from_manifest(settings: Settings, built: dict[str, Any]) -> Embedder:
    """Rebuild the embedder a manifest names: its backend with the default model
    when that is the one recorded, else the recorded model id."""
    embed = settings.embed.model_copy(
        update={"backend": built.get("backend"), "model": None, "fake_dim": int(built.get("dim", 32))}
    )
    embedder = build_embedder(embed)
    if embedder.model_id != built.get("model_id"):
        embedder = build_embedder(embed.model_copy(update={"model": built.get("model_id")}))
    return embedder
