"""A deterministic hash-seeded embedder for unit tests: no weights, no network.

Texts that share words get similar vectors (a hashed bag of words), so tests
of ranking and fusion mean something; equal texts get equal vectors.
"""

from __future__ import annotations

import hashlib
import re
from typing import Sequence

import numpy as np

from zhiku.engine.embedders.base import Embedder

# CJK characters count one by one, so Chinese texts that share words look alike too.
_TOKEN = re.compile(r"[\u3400-\u9fff]|[^\W\u3400-\u9fff]+", re.UNICODE)


class FakeEmbedder(Embedder):
    """Hashed bag-of-words vectors of a small dimension."""

    def __init__(self, dim: int = 32, batch_size: int = 64) -> None:
        self.dim = dim
        self.batch_size = batch_size
        self.model_id = f"fake-hash-{dim}"
        self.calls = 0  # batches embedded, so tests can assert no re-embedding

    def _embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            tokens = _TOKEN.findall(text.lower()) or [""]
            for token in tokens:
                digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
                seed = int.from_bytes(digest, "little")
                out[row] += np.random.default_rng(seed).standard_normal(self.dim)
        return out
