"""The embedder interface: a backend implements `_embed_batch`; the base does the rest."""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from concurrent.futures import Future
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
        cache = self.__dict__.setdefault("_query_cache", _LRU(QUERY_CACHE_SIZE))
        vector = cache.get(text)
        if vector is None:
            if self.query_batch > 1:
                vector = self._query_batcher().embed(self.query_prefix + text)
            else:
                vector = _normalise(self._embed_batch([self.query_prefix + text]))[0]
            vector.setflags(write=False)
            cache.put(text, vector)
        return vector

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

    Under concurrent load (a server's request threads) the queries waiting while
    the model runs go in together next time: one model call costs less than the
    same texts one by one, and the model stays on one thread, leaving the other
    cores to HTTP and the search engine. A lone query waits for nobody. The
    worker thread exits when idle and starts again on demand.
    """

    IDLE_EXIT_S = 5.0

    def __init__(self, embed: Callable[[list[str]], np.ndarray], max_batch: int) -> None:
        self._embed = embed
        self._max = max_batch
        self._waiting: list[tuple[str, Future[np.ndarray]]] = []
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None

    def embed(self, text: str) -> np.ndarray:
        future: Future[np.ndarray] = Future()
        with self._cond:
            self._waiting.append((text, future))
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="zhiku-query-embed", daemon=True)
                self._worker.start()
            self._cond.notify()
        return future.result()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._waiting:
                    self._cond.wait(self.IDLE_EXIT_S)
                    if not self._waiting:
                        self._worker = None
                        return
                batch = self._waiting[: self._max]
                del self._waiting[: self._max]
            try:
                vectors = self._embed([text for text, _ in batch])
            except BaseException as exc:  # each caller gets the model's error
                for _, future in batch:
                    future.set_exception(exc)
            else:
                for (_, future), vector in zip(batch, vectors):
                    future.set_result(vector)


class _LRU:
    """A small thread-safe LRU map: repeated queries skip the model."""

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
