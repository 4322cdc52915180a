"""The embedder interface: a backend implements `_embed_batch`; the base does the rest."""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

import numpy as np

_WORDISH = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\s\u3400-\u9fff\uf900-\ufaff]+")


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension.

    Construction is cheap; `warm_up()` loads weights. `model_id` and `dim` go
    into each collection's manifest so vectors from two models never mix.
    """

    model_id: str
    dim: int
    batch_size: int = 64
    # Some models want different text for queries and passages (e5: "query: ").
    query_prefix: str = ""
    document_prefix: str = ""
    # Most concurrent queries embedded as one batch; 1 embeds each in its caller.
    query_batch: int = 1
    # Per question language: the cosine below which the closest chunk is
    # unlikely to answer the question (ask's retrieval gate). Only a model
    # calibrated on labelled data has one.
    relevance_floors: Mapping[str, float] = MappingProxyType({})
    # Whether a question's vector lands near passages in other languages. Only
    # such a model gets a cross-lingual pool in search: an English-only model's
    # nearest Chinese chunks are noise, and the pool forces two of them into
    # the top 3 of every search of a mixed collection.
    cross_lingual: bool = False

    @property
    def dense_parts(self) -> tuple[int, ...]:
        """Sizes of the parts a query vector may be zero outside of (their sum is dim).

        A collection made for this embedder stores each part as its own vector
        (engine/stores/_layout.py), so a query touching one part searches only
        that part's index. () for a vector that is one whole.
        """
        return ()

    def warm_up(self) -> None:
        """Load weights now rather than on first use."""

    @abstractmethod
    def _embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Embed one batch; rows need not be normalised."""

    def count_tokens(self, text: str) -> int:
        """Tokens this model would see; backends with a tokenizer override this."""
        return len(_WORDISH.findall(text))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages in batches; returns an (n, dim) float32 array."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prefixed = [self.document_prefix + t for t in texts]
        parts = [
            self._embed_batch(prefixed[i : i + self.batch_size])
            for i in range(0, len(prefixed), self.batch_size)
        ]
        return _normalise(np.vstack(parts))

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query; returns a (dim,) float32 array. Recent queries are cached."""
        cache = self.__dict__.setdefault("_query_cache", LRU(QUERY_CACHE_SIZE))
        vector = cache.get(text)
        if vector is None:
            if self.query_batch > 1:
                vector = self._query_batcher().embed(self.query_prefix + text)
            else:
                vector = _normalise(self._embed_batch([self.query_prefix + text]))[0]
            vector.setflags(write=False)
            cache.put(text, vector)
        return vector

    def embed_query_across(self, text: str) -> np.ndarray:
        """The query's vector for searching passages in another language (cross-lingual pools)."""
        return self.embed_query(text)

    def similarity(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """Each text's score against the query, as search would score it as a passage."""
        return self.embed_documents(texts) @ self.embed_query(query)

    def _query_batcher(self) -> "_QueryBatcher":
        batcher = self.__dict__.get("_batcher")
        if batcher is None:
            with _BATCHER_LOCK:
                batcher = self.__dict__.setdefault(
                    "_batcher", _QueryBatcher(lambda texts: _normalise(self._embed_batch(texts)), self.query_batch)
                )
        return batcher

    def clear_cache(self) -> None:
        """Forget cached query vectors (benchmarks clear it between configurations)."""
        self.__dict__.pop("_query_cache", None)

    def describe(self) -> dict[str, object]:
        """What the manifest records about this embedder."""
        return {"model_id": self.model_id, "dim": self.dim}


QUERY_CACHE_SIZE = 4096
_BATCHER_LOCK = threading.Lock()


class _QueryBatcher:
    """Coalesces queries that arrive together into one model call.

    Under concurrent load (a server's request threads) the queries that wait
    while the model runs go in together next time: one model call costs less
    than the same texts one by one, and the model runs on one thread at a
    time, leaving the other cores to HTTP and the search engine. A lone query
    runs in its own thread at once: no hand-off, so no added latency. After a
    batch the caller that ran it passes the lead to the oldest waiting query.
    """

    def __init__(self, embed: Callable[[list[str]], np.ndarray], max_batch: int) -> None:
        self._embed = embed
        self._max = max_batch
        self._lock = threading.Lock()
        self._waiting: list[_Pending] = []
        self._busy = False  # someone is leading: running or about to run a batch

    def embed(self, text: str) -> np.ndarray:
        me = _Pending(text)
        with self._lock:
            self._waiting.append(me)
            lead = not self._busy
            self._busy = True
        if not lead:
            me.done.wait()
            if not me.promoted:
                return me.result()
        # Leading: the oldest waiting query is this one, so it is in the batch.
        with self._lock:
            batch = self._waiting[: self._max]
            del self._waiting[: self._max]
        try:
            vectors = self._embed([p.text for p in batch])
        except BaseException as exc:  # each caller of the batch gets the model's error
            for p in batch:
                p.error = exc
        else:
            for p, vector in zip(batch, vectors):
                p.vector = vector
        finally:
            with self._lock:
                if self._waiting:
                    self._waiting[0].promoted = True
                    self._waiting[0].done.set()
                else:
                    self._busy = False
            for p in batch:
                if p is not me:
                    p.done.set()
        return me.result()


class _Pending:
    """One query waiting in a batcher."""

    __slots__ = ("text", "done", "promoted", "vector", "error")

    def __init__(self, text: str) -> None:
        self.text = text
        self.done = threading.Event()
        self.promoted = False
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None

    def result(self) -> np.ndarray:
        if self.error is not None:
            raise self.error
        assert self.vector is not None
        return self.vector


class LRU:
    """A small thread-safe LRU map: repeated queries skip the model (and translations the LLM)."""

    def __init__(self, size: int) -> None:
        from collections import OrderedDict

        self.size = size
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: str, value: np.ndarray) -> None:
        with self._lock:
            self._data[key] = value
            if len(self._data) > self.size:
                self._data.popitem(last=False)


def _normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms
