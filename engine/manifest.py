"""The collection manifest: how an index was built, checked on every open."""

from __future__ import annotations

import time
from typing import Any

from zhiku.engine.bm25 import LengthStats
from zhiku.engine.embedders.base import Embedder
from zhiku.engine.errors import ManifestMismatch
from zhiku.engine.settings import Settings
from zhiku.engine.tokenize import TOKENIZER_VERSION

FORMAT = 1


def new_manifest(settings: Settings, embedder: Embedder) -> dict[str, Any]:
    """A fresh manifest for a collection built with these settings and this embedder."""
    return {
        "format": FORMAT,
        "created_at": time.time(),
        "embedder": {"backend": settings.embed.backend, **embedder.describe()},
        "tokenizer": TOKENIZER_VERSION,
        "bm25": {"k1": settings.retrieval.bm25_k1, "b": settings.retrieval.bm25_b, "docs": 0, "total_len": 0},
        "chunk": {"size": settings.chunk.size, "overlap": settings.chunk.overlap},
    }


def check_compatible(name: str, manifest: dict[str, Any], embedder: Embedder) -> None:
    """Refuse to mix vectors: the embedder and tokenizer must match what built the index."""
    built = manifest.get("embedder", {})
    if built.get("model_id") != embedder.model_id or int(built.get("dim", -1)) != embedder.dim:
        raise ManifestMismatch(
            f"collection {name!r} was built with embedding model {built.get('model_id')!r} "
            f"(dim {built.get('dim')}), but the configured model is {embedder.model_id!r} "
            f"(dim {embedder.dim}); configure the same model or re-ingest into a new collection",
            built=built,
            configured=embedder.describe(),
        )
    if manifest.get("tokenizer") != TOKENIZER_VERSION:
        raise ManifestMismatch(
            f"collection {name!r} was built with BM25 tokenizer {manifest.get('tokenizer')!r}; "
            f"this zhiku uses {TOKENIZER_VERSION!r}; re-ingest the collection",
        )


def length_stats(manifest: dict[str, Any]) -> LengthStats:
    """The running BM25 length statistics recorded in a manifest."""
    bm25 = manifest["bm25"]
    return LengthStats(docs=int(bm25.get("docs", 0)), total_len=int(bm25.get("total_len", 0)))
