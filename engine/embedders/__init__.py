"""Embedder registry: a backend name maps to a factory taking EmbedSettings."""

from __future__ import annotations

from typing import Callable

from zhiku.engine.embedders.base import Embedder
from zhiku.engine.registry import lookup
from zhiku.engine.settings import EmbedSettings


def _fake(s: EmbedSettings) -> Embedder:
    from zhiku.engine.embedders.fake import FakeEmbedder

    return FakeEmbedder(dim=s.fake_dim, batch_size=s.batch_size)


def _sentence_transformers(s: EmbedSettings) -> Embedder:
    from pathlib import Path

    from zhiku.engine.embedders.sentence_transformers import (
        SentenceTransformerEmbedder,
        default_onnx_path,
    )

    # "auto": the ONNX export of the default model when `make models` made one.
    onnx = {"off": None, "auto": default_onnx_path() if s.model is None else None}.get(s.onnx, Path(s.onnx))
    return SentenceTransformerEmbedder(
        model=s.model, batch_size=s.batch_size, threads=s.threads, max_seq_length=s.max_seq_length,
        onnx_path=onnx,
    )


def _use_multilingual(s: EmbedSettings) -> Embedder:
    from zhiku.engine.embedders.onnx_use import UniversalSentenceEncoderEmbedder

    return UniversalSentenceEncoderEmbedder(model=s.model, batch_size=s.batch_size, threads=s.threads)


def _e5_small(s: EmbedSettings) -> Embedder:
    from zhiku.engine.embedders.e5 import E5SmallEmbedder

    return E5SmallEmbedder(model=s.model, batch_size=s.batch_size, threads=s.threads)


def _bilingual(s: EmbedSettings) -> Embedder:
    from zhiku.engine.embedders.bilingual import BilingualEmbedder
    from zhiku.engine.embedders.onnx_use import UniversalSentenceEncoderEmbedder

    # `model` names the English half (a sentence-transformers folder; default MiniLM).
    multilingual = UniversalSentenceEncoderEmbedder(batch_size=s.batch_size, threads=s.threads)
    return BilingualEmbedder(_sentence_transformers(s), multilingual)


def _openai(s: EmbedSettings) -> Embedder:
    from zhiku.engine.embedders.openai import OpenAIEmbedder

    key = s.api_key.get_secret_value() if s.api_key else None
    return OpenAIEmbedder(
        base_url=s.base_url, model=s.model, api_key=key, timeout_s=s.timeout_s, batch_size=s.batch_size
    )


EMBEDDERS: dict[str, Callable[[EmbedSettings], Embedder]] = {
    "fake": _fake,
    "sentence-transformers": _sentence_transformers,
    "use-multilingual": _use_multilingual,
    "e5-small": _e5_small,
    "bilingual": _bilingual,
    "openai": _openai,
}


def build_embedder(settings: EmbedSettings) -> Embedder:
    """Build the configured embedder (weights load lazily, on warm_up or first use)."""
    embedder = lookup(EMBEDDERS, settings.backend, "embedder backend")(settings)
    for part in (embedder, *getattr(embedder, "parts", ())):
        part.query_batch = settings.query_batch
    return embedder


__all__ = ["EMBEDDERS", "Embedder", "build_embedder"]
