"""Embedder registry: a backend name maps to a factory taking EmbedSettings."""

from __future__ import annotations

from typing import Callable

from zhiku.engine.embedders.base import Embedder
from zhiku.engine.errors import ConfigError
from zhiku.engine.settings import EmbedSettings


def _fake(s: EmbedSettings) -> Embedder:
    from zhiku.engine.embedders.fake import FakeEmbedder

    return FakeEmbedder(dim=s.fake_dim, batch_size=s.batch_size)


def _sentence_transformers(s: EmbedSettings) -> Embedder:
    from zhiku.engine.embedders.sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(
        model=s.model, batch_size=s.batch_size, threads=s.threads, max_seq_length=s.max_seq_length
    )


EMBEDDERS: dict[str, Callable[[EmbedSettings], Embedder]] = {
    "fake": _fake,
    "sentence-transformers": _sentence_transformers,
}


def build_embedder(settings: EmbedSettings) -> Embedder:
    """Build the configured embedder (weights load lazily, on warm_up or first use)."""
    try:
        factory = EMBEDDERS[settings.backend]
    except KeyError:
        raise ConfigError(
            f"unknown embedder backend {settings.backend!r}; known: {sorted(EMBEDDERS)}"
        ) from None
    return factory(settings)


__all__ = ["EMBEDDERS", "Embedder", "build_embedder"]
