"""Settings of the LLM chains (ask, summarize, extract, classify, query rewriting).

Kept beside the chains until the lead moves this group into engine/settings.py
as `Settings.ask`; everything has a default so nothing needs configuring.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class AskSettings(BaseModel):
    """How grounded answers are retrieved, packed, gated and checked."""

    top_k: int = Field(5, ge=1, le=50)  # sources packed into the prompt
    candidates: int = Field(20, ge=1, le=500)  # retrieved before reranking
    # Budget for the packed sources, and for each one: longer sources are cut
    # to their sentences nearest the question. Prompt tokens dominate time to
    # first token on CPU (~50-100 tokens/s on 2 cores for the 0.5B model).
    context_tokens: int = Field(1500, ge=64)
    source_tokens: int | None = Field(None, ge=16)
    expand_parents: bool = True
    answer_tokens: int = Field(128, ge=8)
    # Retrieval gate: refuse without calling the model when the best source
    # covers too little of the question (share of its content words), or when
    # the top retrieval score is below min_score (None: scale-dependent, off).
    min_coverage: float = Field(0.5, ge=0.0, le=1.0)
    min_score: float | None = None
    # Citation check: share of the answer's new words a source must contain.
    min_support: float = Field(0.5, ge=0.0, le=1.0)
    refuse_ungrounded: bool = False
    history_turns: int = Field(4, ge=0, le=50)
    rerank: Literal["none", "cross-encoder", "fake"] = "none"
    rerank_model: Path | None = None
    query_rewrite: Literal["none", "multi-query", "hyde"] = "none"
    rewrite_queries: int = Field(3, ge=1, le=10)
    # Other abilities.
    extract_retries: int = Field(2, ge=0, le=10)
    summary_chunk_tokens: int | None = None  # None: derived from the context window
