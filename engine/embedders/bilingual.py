"""A per-language dense leg in one vector: an English model beside a multilingual one.

A passage's vector is the two models' unit vectors side by side, scaled by
1/sqrt(2), so each half carries half its length. A query meets the half that
serves its language best, by zeroing the other half of its own vector:

- an English question about English passages: the English half only, so it
  ranks exactly as the English model alone (MiniLM: the best English quality
  of the offline models, at a fifth of e5's cost);
- a Chinese question, or any question searching the other language's pool
  (cross-lingual): the multilingual half only (USE-multilingual: trained on
  translation pairs, and an order of magnitude cheaper than MiniLM).

Under cosine distance a query half meets the same passage half scaled by
1/sqrt(2), so every score is the part model's cosine times 1/sqrt(2), and the
English floor is the English model's calibrated floor times the same factor.

A collection stores the two halves as two named vectors (`dense_parts`,
engine/stores/_layout.py) with the same scores, so an English question
searches the 384-dimensional English index only, not 896 dimensions.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Sequence

import numpy as np

from zhiku.engine.embedders.base import Embedder
from zhiku.engine.query import detect_language

HALF = 1.0 / math.sqrt(2.0)


class BilingualEmbedder(Embedder):
    """`english` and `multilingual` embedders side by side; the query's language picks the half."""

    cross_lingual = True

    def __init__(self, english: Embedder, multilingual: Embedder) -> None:
        self.english = english
        self.multilingual = multilingual
        self.model_id = f"{english.model_id}+{multilingual.model_id}"
        self.dim = english.dim + multilingual.dim
        self.batch_size = english.batch_size
        # Only English questions meet the English half, scored at HALF its cosine.
        self.relevance_floors = MappingProxyType(
            {lang: floor * HALF for lang, floor in english.relevance_floors.items() if lang == "en"}
        )

    @property
    def parts(self) -> tuple[Embedder, Embedder]:
        return (self.english, self.multilingual)

    @property
    def dense_parts(self) -> tuple[int, ...]:
        """Stored as two vectors, so a query searches only the half it meets."""
        return (self.english.dim, self.multilingual.dim)

    def warm_up(self) -> None:
        self.english.warm_up()
        self.multilingual.warm_up()
        self.dim = self.english.dim + self.multilingual.dim

    def count_tokens(self, text: str) -> int:
        # Chunks must fit both models: the stricter count decides.
        return max(self.english.count_tokens(text), self.multilingual.count_tokens(text))

    def _embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_documents(texts)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Each part applies its own passage prefix and normalises its rows.
        both = np.hstack([self.english.embed_documents(texts), self.multilingual.embed_documents(texts)])
        return (both * HALF).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """English questions meet the English half; others the multilingual half."""
        return self._query(text, english=detect_language(text) == "en")

    def embed_query_across(self, text: str) -> np.ndarray:
        """A question searching passages in another language meets the multilingual half."""
        return self._query(text, english=False)

    def similarity(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """As search scores them, computing only the half the query meets (half the model work)."""
        part = self.english if detect_language(query) == "en" else self.multilingual
        return (part.embed_documents(texts) @ part.embed_query(query)) * HALF

    def _query(self, text: str, english: bool) -> np.ndarray:
        # Each part caches its own query vectors; only the half that is used is computed.
        out = np.zeros(self.english.dim + self.multilingual.dim, dtype=np.float32)
        if english:
            out[: self.english.dim] = self.english.embed_query(text)
        else:
            out[self.english.dim :] = self.multilingual.embed_query(text)
        out.setflags(write=False)
        return out

    def clear_cache(self) -> None:
        self.english.clear_cache()
        self.multilingual.clear_cache()

    def describe(self) -> dict[str, object]:
        return {"model_id": self.model_id, "dim": self.dim,
                "parts": [self.english.describe(), self.multilingual.describe()]}
