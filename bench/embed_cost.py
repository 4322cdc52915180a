"""Embedding cost of the default `bilingual` embedder against MiniLM alone, on the same passages.

The two embed the same passages in turns, several rounds, in one process, so
a shared machine's changing load falls on both alike:

    python bench/embed_cost.py [--passages 48] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from zhiku.engine.embedders import build_embedder
from zhiku.engine.settings import EmbedSettings
from zhiku.eval.beir import load_beir

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "retrieval"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    embedders = {name: build_embedder(EmbedSettings(backend=name)) for name in ("sentence-transformers", "bilingual")}
    for embedder in embedders.values():
        embedder.warm_up()
    for name in ("squad-dev", "cmrc-trial"):
        corpus = load_beir(SHARED / name, limit=1).corpus
        texts = [d["text"] for d in list(corpus.values())[: args.passages]]
        seconds = dict.fromkeys(embedders, 0.0)
        for _ in range(args.rounds):
            for label, embedder in embedders.items():
                t0 = time.perf_counter()
                embedder.embed_documents(texts)
                seconds[label] += time.perf_counter() - t0
        ratio = seconds["bilingual"] / seconds["sentence-transformers"]
        print(f"{name}: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()) + f", ratio {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
