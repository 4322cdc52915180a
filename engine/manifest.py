"""The collection manifest: how an index was built, written once, checked on every open.

It fixes everything that decides how a chunk is encoded, BM25's `avgdl`
included. avgdl is fixed when the collection is created, never a running
mean: with a running mean, a chunk's BM25 vector depended on which documents
happened to be written before it, so two concurrent writers, a replace or a
delete changed how later chunks were encoded, and a concurrent build differed
from a serial one. With it fixed, encoding a chunk is a pure function of the
chunk and the manifest.

Manifests written before format 2 recorded a running `docs`/`total_len`; they
keep that mean as their fixed avgdl, so their stored vectors stay valid.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from zhiku.engine.embedders.base import Embedder
from zhiku.engine.errors import ConfigError, ManifestMismatch
from zhiku.engine.settings import Settings
from zhiku.engine.stores.base import VectorStore
from zhiku.engine.tokenize import TOKENIZER_VERSION, tokenizer

FORMAT = 2


# avgdl of a new collection per token of chunk size (256 by default: avgdl 128).
# Measured with bench/bm25_avgdl.py against the running mean it replaces
# (docs/architecture.md, "BM25 length normalisation"): nDCG@10 on squad-dev
# (1,500 queries) BM25 0.8450 running, 0.8490 at the true mean (74 tokens),
# 0.8515 here; hybrid 0.8734 running, 0.8765 here; cmrc-trial BM25 0.983 for
# every value, hybrid 0.9756 running, 0.9768 here. Quality is flat from 0.375 to 0.75; half the chunk
# size is the middle of that plateau, not its best point on these sets.
AVGDL_PER_CHUNK_TOKEN = 0.5


def default_avgdl(settings: Settings) -> float:
    """The fixed BM25 avgdl of a new collection (settings.retrieval.bm25_avgdl or chunk-derived)."""
    fixed = settings.retrieval.bm25_avgdl
    return float(fixed) if fixed is not None else AVGDL_PER_CHUNK_TOKEN * settings.chunk.size


class BM25Params(BaseModel):
    """BM25's parameters, fixed for the collection's life."""

    model_config = ConfigDict(extra="forbid")

    k1: float
    b: float
    avgdl: float = Field(gt=0)


class ChunkParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int
    overlap: int


class Manifest(BaseModel):
    """What a collection was built with; `Manifest.load` / `save` read and write the store's copy."""

    model_config = ConfigDict(extra="allow")

    format: int = FORMAT
    created_at: float = Field(default_factory=time.time)
    embedder: dict[str, Any]
    tokenizer: str
    bm25: BM25Params
    chunk: ChunkParams

    @classmethod
    def new(cls, settings: Settings, embedder: Embedder) -> "Manifest":
        """The manifest of a collection created now with these settings and this embedder."""
        r = settings.retrieval
        return cls(
            embedder={"backend": settings.embed.backend, **embedder.describe()},
            tokenizer=TOKENIZER_VERSION,
            bm25=BM25Params(k1=r.bm25_k1, b=r.bm25_b, avgdl=default_avgdl(settings)),
            chunk=ChunkParams(size=settings.chunk.size, overlap=settings.chunk.overlap),
        )

    @classmethod
    def from_dict(cls, raw: dict[str, Any], name: str, settings: Settings) -> "Manifest":
        """Parse a stored manifest, upgrading a format-1 running mean to a fixed avgdl."""
        data = dict(raw)
        bm25 = dict(data.get("bm25") or {})
        if "avgdl" not in bm25:
            docs, total = int(bm25.pop("docs", 0) or 0), int(bm25.pop("total_len", 0) or 0)
            bm25["avgdl"] = total / docs if docs and total else default_avgdl(settings)
        data["bm25"] = bm25
        try:
            return cls.model_validate(data)
        except ValueError as exc:
            raise ConfigError(f"manifest of collection {name!r} is damaged: {exc}") from None

    @classmethod
    def load(cls, store: VectorStore, name: str, settings: Settings) -> "Manifest | None":
        """The collection's manifest, or None if none was written."""
        raw = store.read_manifest(name)
        return None if raw is None else cls.from_dict(raw, name, settings)

    def save(self, store: VectorStore, name: str) -> None:
        """Write this manifest as the collection's (done once, at creation)."""
        store.write_manifest(name, self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The manifest as plain JSON data."""
        return self.model_dump(mode="json")

    def check_compatible(self, name: str, embedder: Embedder) -> None:
        """Refuse to mix vectors: the embedder and tokenizer must match what built the index."""
        built = self.embedder
        if built.get("model_id") != embedder.model_id or int(built.get("dim", -1)) != embedder.dim:
            raise ManifestMismatch(
                f"collection {name!r} was built with embedding model {built.get('model_id')!r} "
                f"(dim {built.get('dim')}), but the configured model is {embedder.model_id!r} "
                f"(dim {embedder.dim}); configure the same model or re-ingest into a new collection",
                built=built,
                configured=embedder.describe(),
            )
        try:
            tokenizer(self.tokenizer)
        except ConfigError as exc:
            raise ManifestMismatch(f"collection {name!r}: {exc}") from None
