"""Chunk corpora of any size for speed benchmarks, built from real squad-dev text.

A chunk is 2-4 consecutive real sentences (fixed seed), so vocabulary and
lengths look like real documents at any size. Embedding 100k chunks with
MiniLM takes about an hour on this 2-core machine, so each *sentence* is
embedded once (cached on disk) and a chunk's vector is the normalised mean of
its sentences' vectors: the model's own geometry, at a fraction of the cost.
Query vectors are always computed by the real model at search time.
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "data" / "retrieval" / "squad-dev"
CACHE = ROOT / "bench" / "results" / "cache"
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")


def sentences() -> list[tuple[str, str]]:
    """(title, sentence) pairs from the squad-dev corpus, in corpus order."""
    out = []
    with (SQUAD / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            out.extend((row.get("title", ""), s) for s in _SENT.split(row["text"]) if len(s) > 20)
    return out


def chunks(n: int, seed: int = 13) -> list[dict]:
    """n chunk records {id, title, text, sentences: [indices]}, deterministic for (n, seed)."""
    return list(iter_chunks(n, seed))


def iter_chunks(n: int, seed: int = 13, pool: list[tuple[str, str]] | None = None) -> Iterator[dict]:
    """The records of `chunks(n, seed)` one at a time, for sizes that should not sit in memory."""
    pool = pool if pool is not None else sentences()
    rng = random.Random(seed)
    for i in range(n):
        start = rng.randrange(len(pool) - 4)
        picked = list(range(start, start + rng.randint(2, 4)))
        yield {
            "id": f"c{i}",
            "title": pool[start][0],
            "text": " ".join(pool[j][1] for j in picked),
            "sentences": picked,
        }


def queries(n: int, offset: int = 0) -> list[str]:
    """Real questions from squad-dev queries.jsonl."""
    with (SQUAD / "queries.jsonl").open(encoding="utf-8") as fh:
        rows = [json.loads(line)["text"] for line in fh]
    return rows[offset : offset + n]


def sentence_vectors(embedder) -> np.ndarray:  # type: ignore[no-untyped-def]
    """MiniLM (or the configured model) vectors of every pool sentence, cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    pool = sentences()
    path = CACHE / f"sentences-{embedder.model_id.replace('/', '_')}-{len(pool)}.npy"
    if path.exists():
        return np.load(path)
    t0 = time.perf_counter()
    texts = [s for _, s in pool]
    parts = []
    for i in range(0, len(texts), 1024):
        parts.append(embedder.embed_documents(texts[i : i + 1024]))
        print(f"  embedded {i + len(parts[-1])}/{len(texts)} sentences ({time.perf_counter() - t0:.0f}s)",
              file=sys.stderr)
    matrix = np.vstack(parts).astype(np.float32)
    np.save(path, matrix)
    return matrix


def chunk_vectors(records: list[dict], embedder, sent: np.ndarray | None = None) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Normalised mean of each chunk's sentence vectors (`sent`: sentence_vectors, if loaded)."""
    sent = sentence_vectors(embedder) if sent is None else sent
    out = np.stack([sent[r["sentences"]].mean(axis=0) for r in records]).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)
