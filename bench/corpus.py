"""Synthetic-but-real chunk corpora for speed benchmarks, built from squad-dev text.

Chunks are 2-4 real sentences drawn with a fixed seed, so vocabulary and
lengths look like real documents at any size; embeddings are cached on disk
so several benchmarks (and reruns) pay for them once.
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "data" / "retrieval" / "squad-dev"
CACHE = ROOT / "bench" / "results" / "cache"
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")


def sentences() -> list[tuple[str, str]]:
    """(title, sentence) pairs from the squad-dev corpus."""
    out = []
    with (SQUAD / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            out.extend((row.get("title", ""), s) for s in _SENT.split(row["text"]) if len(s) > 20)
    return out


def chunks(n: int, seed: int = 13) -> list[dict[str, str]]:
    """n chunk records {id, title, text}, deterministic for (n, seed)."""
    pool = sentences()
    rng = random.Random(seed)
    out = []
    for i in range(n):
        start = rng.randrange(len(pool))
        size = rng.randint(2, 4)
        picked = pool[start : start + size]
        out.append({"id": f"c{i}", "title": picked[0][0], "text": " ".join(s for _, s in picked)})
    return out


def queries(n: int, offset: int = 0) -> list[str]:
    """Real questions from squad-dev queries.jsonl."""
    rows = [json.loads(l)["text"] for l in (SQUAD / "queries.jsonl").open(encoding="utf-8")]
    return rows[offset : offset + n]


def embeddings(records: list[dict[str, str]], embedder, name: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Embed `title\\ntext` of each record, cached under bench/results/cache."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{name}-{embedder.model_id.replace('/', '_')}-{len(records)}.npy"
    if path.exists():
        return np.load(path)
    t0 = time.perf_counter()
    texts = [f"{r['title']}\n{r['text']}" for r in records]
    parts = []
    for i in range(0, len(texts), 2048):
        parts.append(embedder.embed_documents(texts[i : i + 2048]))
        print(f"  embedded {i + len(parts[-1])}/{len(texts)} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    matrix = np.vstack(parts).astype(np.float32)
    np.save(path, matrix)
    return matrix
