"""Rerankers: reorder retrieved hits by a (query, passage) relevance model.

Only a cross-encoder and a deterministic fake exist; no cross-encoder weights
ship offline, so `cross-encoder` needs `ask.rerank_model` to name a local folder.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Sequence

from zhiku.engine.errors import ConfigError, ModelUnavailable
from zhiku.engine.types import Hit


class Reranker(ABC):
    """Scores (query, hit text) pairs; higher is more relevant."""

    @abstractmethod
    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """One relevance score per text."""

    def rerank(self, query: str, hits: list[Hit], top_k: int | None = None) -> list[Hit]:
        """Hits sorted by reranker score; the retrieval score moves to metadata."""
        if not hits:
            return []
        scores = self.score(query, [h.text for h in hits])
        ranked = sorted(zip(scores, range(len(hits))), key=lambda p: (-p[0], p[1]))
        out = [
            dataclasses.replace(
                hits[i], score=float(s), metadata={**hits[i].metadata, "retrieval_score": hits[i].score}
            )
            for s, i in ranked
        ]
        return out[:top_k] if top_k else out


class CrossEncoderReranker(Reranker):
    """A sentence-transformers CrossEncoder loaded from a local folder."""

    def __init__(self, model_path: Path, batch_size: int = 32, threads: int = 1) -> None:
        self.path = Path(model_path)
        self.batch_size = batch_size
        self.threads = threads
        self._model: Any = None

    def warm_up(self) -> None:
        if self._model is not None:
            return
        if not self.path.exists():
            raise ModelUnavailable(f"cross-encoder folder not found: {self.path}")
        import torch
        from sentence_transformers import CrossEncoder

        torch.set_num_threads(self.threads)
        self._model = CrossEncoder(str(self.path), device="cpu", local_files_only=True)

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        self.warm_up()
        pairs = [(query, t) for t in texts]
        scores = self._model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return [float(s) for s in scores]


class OverlapReranker(Reranker):
    """Deterministic fake: share of the query's content words found in the text."""

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        from zhiku.engine.llm.citations import content_tokens, coverage

        needles = content_tokens(query)
        return [coverage(needles, t) for t in texts]


RERANKERS: dict[str, Callable[[Path | None, int], Reranker]] = {
    "cross-encoder": lambda path, threads: _cross_encoder(path, threads),
    "fake": lambda path, threads: OverlapReranker(),
}


def _cross_encoder(path: Path | None, threads: int) -> Reranker:
    if path is None:
        raise ConfigError("rerank 'cross-encoder' needs ask.rerank_model (a local folder)")
    return CrossEncoderReranker(path, threads=threads)


def build_reranker(name: str, model_path: Path | None = None, threads: int = 1) -> Reranker | None:
    """The named reranker, or None for 'none'."""
    if name == "none":
        return None
    try:
        factory = RERANKERS[name]
    except KeyError:
        raise ConfigError(f"unknown reranker {name!r}; known: none, {sorted(RERANKERS)}") from None
    return factory(model_path, threads)
