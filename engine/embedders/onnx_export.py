"""Export a sentence-transformers BERT-style model to ONNX for faster CPU inference.

The graph includes mean pooling and L2 normalisation, so ONNX Runtime returns
the model's sentence embeddings (checked against sentence-transformers itself,
batched with padding, to 1e-4 before the file is kept). Mean pooling is what
the default model's pooling config says; other models keep the torch path. Run by `make models`; never at query time.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

CHECK_TEXTS = [
    "Which NFL team represented the AFC at Super Bowl 50?",
    "short",
    "北京是中华人民共和国的首都。",
    "A much longer passage about the history of the Denver Broncos, their Super Bowl wins and the "
    "stadium in Santa Clara, California, where the 50th game was played in February 2016.",
]
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export(model_path: Path, target: Path, tolerance: float = 1e-4) -> Path:
    """Write `target` (atomically) unless it exists; verify it matches the torch model."""
    if target.exists():
        return target
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    # Eager attention traces to a graph whose masking works for any length.
    model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            hidden = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    sample = tokenizer(CHECK_TEXTS[:2], padding=True, return_tensors="pt")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.onnx")
    dynamic = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    torch.onnx.export(
        Pooled(model), tuple(sample[n] for n in INPUTS), str(partial),
        input_names=list(INPUTS), output_names=["embedding"],
        dynamic_axes={**dynamic, "embedding": {0: "batch"}}, opset_version=17, dynamo=False,
    )
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
    want = reference.encode(CHECK_TEXTS, normalize_embeddings=True, show_progress_bar=False)
    got = OnnxSession(partial, threads=1).run(tokenizer, CHECK_TEXTS, 256)
    diff = float(np.abs(got - want).max())
    if diff > tolerance:
        partial.unlink()
        raise RuntimeError(f"ONNX export differs from the torch model by {diff:.2e}")
    os.replace(partial, target)
    return target


class OnnxSession:
    """An ONNX Runtime session over an exported pooled encoder."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(self, tokenizer, texts, max_length: int) -> np.ndarray:  # type: ignore[no-untyped-def]
        batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="np")
        feed = {name: batch[name].astype(np.int64) for name in INPUTS if name in batch}
        if "token_type_ids" not in feed:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        return self.session.run(None, feed)[0]
