"""Typed settings for every zhiku component, built once at an entry point.

Sources, highest priority first: keyword overrides, environment (`ZHIKU_*`,
nested with `__`, e.g. `ZHIKU_EMBED__MODEL`), a `zhiku.toml` file (path from
`ZHIKU_CONFIG`, default `./zhiku.toml`), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


# top_k can never exceed these, whatever is configured (the API schema publishes them).
HARD_MAX_TOP_K = 10_000
MAX_LLM_TOP_K = 50  # sources or hits an LLM ability reads


class EmbedSettings(BaseModel):
    """Which embedder turns text into dense vectors, and how hard it works."""

    # `bilingual`: MiniLM-L6 for English questions beside USE-multilingual for
    # Chinese and cross-lingual ones (engine/embedders/bilingual.py). Collections
    # keep the model their manifest pins, so changing this affects new ones only.
    backend: str = "bilingual"
    # None means the backend's own default (MiniLM-L6 from its PyPI package;
    # for `bilingual`, its English half).
    model: str | None = None
    batch_size: int = Field(64, ge=1, le=4096)
    threads: int = Field(1, ge=1, le=256)
    max_seq_length: int = Field(256, ge=8, le=8192)
    # Concurrent search queries embedded together, at most this many per model
    # call (a server under load); 1 embeds every query in its own thread.
    query_batch: int = Field(16, ge=1, le=1024)
    # sentence-transformers backend: "auto" uses the ONNX export `make models`
    # writes for the default model (same vectors, faster); "off"; or a path.
    onnx: str = "auto"
    # OpenAI-compatible embeddings endpoint (TEI, vLLM, Ollama, hosted).
    base_url: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = 60.0
    # Only the `fake` backend reads this; real models know their dimension.
    fake_dim: int = Field(32, ge=2, le=4096)


class StoreSettings(BaseModel):
    """Where vectors live: `edge` (in-process Qdrant engine) or `server`."""

    backend: Literal["edge", "server"] = "edge"
    url: str | None = None  # for `server`; ":memory:" runs qdrant-client in-process
    api_key: SecretStr | None = None
    timeout_s: float = Field(30.0, gt=0)
    # Points per write batch.
    upsert_batch: int = Field(256, ge=1, le=100_000)
    search_threads: int = Field(1, ge=0, le=256)
    # HNSW beam width of the dense leg at search time: higher finds more of the
    # exact nearest neighbours and costs more per query. None leaves Qdrant's
    # default (the index's ef_construct, 100). bench/scale.py measures the trade.
    hnsw_ef: int | None = Field(None, ge=1, le=65_536)
    # `server` only: how a new collection is laid out over a Qdrant cluster.
    # None leaves Qdrant's default (one shard per node, one copy, one ack).
    shard_number: int | None = Field(None, ge=1, le=1024)
    replication_factor: int | None = Field(None, ge=1, le=64)
    write_consistency_factor: int | None = Field(None, ge=1, le=64)
    # gRPC (port 6334) instead of REST: cheaper per request for big batches.
    prefer_grpc: bool = False
    grpc_port: int = Field(6334, ge=1, le=65535)
    # Transient failures (unreachable, timeout, 502/503/504) are retried this
    # many times with exponential backoff from retry_backoff_s; never a 4xx.
    retries: int = Field(3, ge=0, le=20)
    retry_backoff_s: float = Field(0.2, ge=0)
    retry_max_backoff_s: float = Field(5.0, ge=0)

    @model_validator(mode="after")
    def _acks_within_copies(self) -> "StoreSettings":
        wcf, rf = self.write_consistency_factor, self.replication_factor
        if wcf is not None and wcf > (rf or 1):
            raise ValueError(
                f"store.write_consistency_factor ({wcf}) cannot exceed store.replication_factor ({rf or 1})"
            )
        return self


class ChunkSettings(BaseModel):
    """How long texts are cut, measured in the embedder's tokens."""

    # MiniLM reads at most 256 word pieces; bigger chunks would be truncated.
    size: int = Field(256, ge=16, le=8192)
    overlap: int = Field(32, ge=0, le=4096)


class RetrievalSettings(BaseModel):
    """Lexical scoring and the fusion of the dense and BM25 legs."""

    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    fusion: Literal["convex", "rrf", "dbsf"] = "convex"
    alpha: float = Field(0.4, ge=0.0, le=1.0)  # weight of the dense leg in convex fusion
    rrf_k: int = Field(60, ge=1)
    prefetch: int = Field(100, ge=1, le=10_000)  # candidates per leg before fusion
    top_k: int = Field(10, ge=1, le=1000)
    max_top_k: int = Field(200, ge=1, le=HARD_MAX_TOP_K)
    bm25_k1: float = Field(1.2, gt=0)
    bm25_b: float = Field(0.75, ge=0, le=1)
    # BM25 avgdl fixed in a new collection's manifest; None: derived from the
    # chunk size (engine/manifest.py says how it was chosen).
    bm25_avgdl: float | None = Field(None, gt=0)
    # Per-query dense weight in convex fusion when the request gives no alpha
    # (engine/adaptive.py); off: always `alpha`.
    adaptive: bool = True
    # Relative gain of a hit whose title holds every query term (engine/ranking.py).
    title_boost: float = Field(0.1, ge=0.0, le=10.0)
    # A question in one language also searches the dense vectors of chunks in
    # the other (zh <-> en) and keeps the best of them near the top.
    cross_lingual: bool = True
    # ... but only when the other language holds at least this share of the
    # collection's chunks: a few stray chunks (English text quoting a Chinese
    # name is detected as Chinese) would otherwise cost every question a pool
    # and put two of them at ranks 2-3. 0 = whenever the other language has any.
    cross_lingual_min_share: float = Field(0.01, ge=0.0, le=1.0)
    # The other language's pool also searches the question translated by the
    # local LLM (engine/crosslingual.py): one generation per new question,
    # so off by default (bench/retrieval_quality.py reports its cost and gain).
    translate_queries: bool = False
    # The other language's pool also searches BM25 with the question's words
    # glossed by a bilingual dictionary (CC-CEDICT; engine/dictionary.py):
    # about a millisecond a question, so on by default.
    dictionary_translation: bool = True
    # A reranker over the fused top `rerank_window`: none, fake (word overlap)
    # or cross-encoder (a local sentence-transformers CrossEncoder folder).
    rerank: Literal["none", "cross-encoder", "fake"] = "none"
    rerank_model: Path | None = None
    rerank_window: int = Field(30, ge=1, le=1000)


class LLMSettings(BaseModel):
    """The generator behind ask and the other LLM abilities."""

    backend: str = "llamacpp"
    model_path: Path | None = None
    gguf_file: str | None = None
    threads: int = Field(2, ge=1, le=256)
    context_window: int = Field(4096, ge=256)
    max_tokens: int = Field(512, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    base_url: str | None = None
    api_key: SecretStr | None = None
    model: str | None = None
    timeout_s: float = 120.0
    # llama.cpp's extra CPU buffer types (AMX tiles, repacked weights). Off by
    # default: on a Sapphire Rapids VM (this project's CI kind) a native build
    # loaded the Q8_0 model into AMX buffers and every decode died with a
    # general protection fault in libggml-cpu. Q8_0 has no x86 repack
    # (ggml-cpu/repack.cpp), so off runs the kernels of a CPU without AMX.
    # Turn on where AMX works (bare metal) or for Q4_0/Q4_K models on AVX2.
    extra_buffers: bool = False


class AskSettings(BaseModel):
    """How grounded answers are retrieved, packed, gated and checked."""

    top_k: int = Field(5, ge=1, le=MAX_LLM_TOP_K)  # sources packed into the prompt
    candidates: int = Field(20, ge=1, le=500)  # retrieved before reranking
    # Budget for the packed sources, and for each one: longer sources are cut
    # to their passages nearest the question. The first (best-ranked) source
    # gets the larger share, since it holds the answer far more often than
    # the rest. Prompt tokens dominate time to first token on CPU, so these
    # defaults are sized for the default local model. With a hosted or GPU
    # model, raise them (e.g. 3000, None, None: whole chunks).
    context_tokens: int = Field(400, ge=64)
    first_source_tokens: int | None = Field(90, ge=16)
    source_tokens: int | None = Field(10, ge=8)
    expand_parents: bool = True
    answer_tokens: int = Field(128, ge=8)
    # "generate": the model writes a short cited answer; "span": a ranker,
    # checked by the model, picks the source sentence that answers
    # (engine/llm/span.py), so every answer is a verbatim, cited sentence
    # (falls back to "generate" for a model that cannot score choices). Span
    # is the default: on the benchmark it gave fewer wrong answers than
    # generation in both languages (README's /ask section has the figures).
    answer_style: Literal["generate", "span"] = "span"
    # A span answer is given when the span scorer (engine/llm/rules.py,
    # SPAN_WEIGHTS) reaches this probability. Below it, with quote_mode on,
    # the ranker's best two sentences are quoted (`mode: "quote"`) when the
    # quote scorer (SPAN_QUOTE_WEIGHTS) reaches min_span_quote_confidence;
    # else the chain refuses (`model`). None: the question language's
    # calibrated value (rules.SPAN_THRESHOLDS: 0.75 and 0.6 in English, 0.75
    # and 0.75 in Chinese).
    min_span_confidence: float | None = Field(None, ge=0.0, le=1.0)
    min_span_quote_confidence: float | None = Field(None, ge=0.0, le=1.0)
    # Retrieval gate: refuse without calling the model when the best source
    # covers too little of the question (share of its content words; Chinese
    # is counted in character bigrams, which paraphrase breaks more often, so
    # it has its own floor), when the closest chunk by embedding is less
    # similar than min_dense_score (None: the embedder's calibrated floor for
    # the question's language, if it has one: 0.45 for MiniLM on English), or
    # when the top fused score is below min_score (None: off).
    # "learned" (default): one calibrated logistic scorer over those signals
    # (engine/llm/rules.py, GATE_WEIGHTS) refuses below min_gate_confidence;
    # "fixed": the thresholds below.
    gate: Literal["learned", "fixed"] = "learned"
    min_gate_confidence: float = Field(0.4, ge=0.0, le=1.0)
    min_coverage: float = Field(0.4, ge=0.0, le=1.0)
    min_coverage_cjk: float = Field(0.3, ge=0.0, le=1.0)
    min_dense_score: float | None = Field(None, ge=-1.0, le=1.0)
    dense_gate: bool = True
    min_score: float | None = None
    # Citation check: share of the answer's new words a source must contain,
    # and how well (relative to the best source) a source must match the
    # question to be cited at all; an answer citing only sources below that is
    # refused as "unsupported" (small models misread off-question passages).
    min_support: float = Field(0.5, ge=0.0, le=1.0)
    min_citation_relevance: float = Field(0.6, ge=0.0, le=1.0)
    # A cited source is kept when its support is at least this share of the
    # best-supported citable source's (citations.attribute, step 4). The value
    # dates from the first version of the check and was not re-measured.
    support_ratio: float = Field(0.6, ge=0.0, le=1.0)
    refuse_ungrounded: bool = False
    # A grounded answer is followed by the cited source's sentence that
    # supports it, verbatim, so every answer carries its evidence.
    answer_with_sentence: bool = True
    # When the model gives no usable answer, quote the best source's best
    # sentence (mode "quote") if the calibrated scorer in engine/llm/rules.py
    # gives it at least this probability of answering; else refuse.
    quote_mode: bool = True
    min_quote_confidence: float = Field(0.8, ge=0.0, le=1.0)
    history_turns: int = Field(4, ge=0, le=50)
    rerank: Literal["none", "cross-encoder", "fake"] = "none"
    rerank_model: Path | None = None
    query_rewrite: Literal["none", "multi-query", "hyde"] = "none"
    rewrite_queries: int = Field(3, ge=1, le=10)
    # Other abilities.
    extract_retries: int = Field(2, ge=0, le=10)
    summary_chunk_tokens: int | None = None  # None: derived from the context window


class IngestSettings(BaseModel):
    """How files are read: OCR of scanned PDF pages and images (ingest/ocr.py)."""

    # auto: OCR images and PDF pages without a usable text layer; force: OCR
    # every PDF page; off: images and scanned pages are rejected as textless.
    ocr: Literal["auto", "off", "force"] = "auto"
    ocr_dpi: int = Field(200, ge=72, le=600)
    # The bundled PP-OCRv4 model reads Chinese and English; nothing else exists offline.
    ocr_languages: list[Literal["zh", "en"]] = Field(default_factory=lambda: ["zh", "en"], min_length=1)
    ocr_max_pages: int = Field(300, ge=1, le=10_000)
    # A PDF page with fewer readable characters in its text layer is OCR'd.
    ocr_min_chars: int = Field(20, ge=0, le=10_000)


class ServerSettings(BaseModel):
    """HTTP server limits and binding."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_mb: float = Field(64.0, gt=0)
    max_text_chars: int = Field(20_000, ge=1)
    llm_queue: int = Field(8, ge=1)
    request_timeout_s: float = Field(120.0, gt=0)
    # Generations run at once per worker (local models use every core they get).
    llm_workers: int = Field(1, ge=1, le=64)
    # Uploads larger than this become a background job (202 + GET /jobs/{id}).
    inline_ingest_mb: float = Field(1.0, ge=0)
    # Documents per page of GET /documents at most.
    max_page: int = Field(1000, ge=1)
    # Host names served besides loopback ones (DNS-rebinding guard); "*" turns the check off.
    allowed_hosts: list[str] = Field(default_factory=list)
    # Finished ingest jobs (and their jobs/*.json) are forgotten after this long.
    job_ttl_s: float = Field(7 * 24 * 3600.0, gt=0)
    # Request threads still running at once, timed-out ones included; more get 503.
    max_running_work: int = Field(64, ge=1)


class Settings(BaseSettings):
    """Everything zhiku can be told; build once, pass down."""

    model_config = SettingsConfigDict(
        env_prefix="ZHIKU_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = Path("./zhiku-data")
    embed: EmbedSettings = EmbedSettings()
    store: StoreSettings = StoreSettings()
    chunk: ChunkSettings = ChunkSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    llm: LLMSettings = LLMSettings()
    ask: AskSettings = AskSettings()
    server: ServerSettings = ServerSettings()
    ingest: IngestSettings = IngestSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("ZHIKU_CONFIG", "zhiku.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment and config file, with overrides on top.

    Nested overrides may be given as dicts (`embed={"backend": "fake"}`) or with
    a double underscore (`embed__backend="fake"`).
    """
    nested: dict[str, object] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if "__" in key:
            group, field = key.split("__", 1)
            nested.setdefault(group, {})
            assert isinstance(nested[group], dict)
            nested[group][field] = value  # type: ignore[index]
        else:
            nested[key] = value
    if not nested:
        return Settings()
    # Merge partial nested groups with what the environment/file already say.
    base = Settings()
    merged: dict[str, object] = {}
    for key, value in nested.items():
        current = getattr(base, key, None)
        if isinstance(value, dict) and isinstance(current, BaseModel):
            merged[key] = type(current).model_validate({**current.model_dump(), **value})
        else:
            merged[key] = value
    return Settings(**merged)
