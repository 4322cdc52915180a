"""Retrieval quality on a BEIR dataset (default: squad-dev): nDCG@10, R@10, MRR@10.

Builds (or reuses) a collection with the configured embedder, then scores
bm25, dense, rrf, dbsf and a convex alpha sweep on the same index.

    python bench/retrieval_quality.py [--data DIR] [--limit N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from statistics import fmean

from zhiku.engine.kb import KnowledgeBase
from zhiku.eval.beir import load_beir
from zhiku.eval.metrics import dedupe, mrr_at_k, ndcg_at_k, recall_at_k

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "retrieval" / "squad-dev"
CONFIGS = [
    ("bm25", {"mode": "bm25"}),
    ("dense", {"mode": "dense"}),
    ("rrf k=60", {"mode": "hybrid", "fusion": "rrf"}),
    ("dbsf", {"mode": "hybrid", "fusion": "dbsf"}),
    *[(f"convex a={a:.1f}", {"mode": "hybrid", "fusion": "convex", "alpha": a}) for a in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)],
    ("default", {}),
]


def build(kb: KnowledgeBase, corpus: dict[str, dict[str, str]]) -> float:
    t0 = time.perf_counter()
    ids = list(corpus)
    for i in range(0, len(ids), 512):
        part = ids[i : i + 512]
        kb.add_texts([corpus[d]["text"] for d in part], ids=part, metadatas=[{"title": corpus[d]["title"]} for d in part])
    kb.optimize()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--limit", type=int, default=None, help="queries to score (default: all)")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "results" / "retrieval-index")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "retrieval_quality.json")
    ap.add_argument("--embed-backend", default=None)
    ap.add_argument("--configs", default=None, help="comma list of config labels to run (default: all)")
    args = ap.parse_args()
    data = load_beir(args.data, limit=args.limit)
    overrides = {"embed__backend": args.embed_backend} if args.embed_backend else {}
    name = f"{data.name}-{data.fingerprint()}"
    with KnowledgeBase(args.work, collection=name, **overrides) as kb:
        build_s = build(kb, data.corpus) if kb.count() == 0 else 0.0
        print(f"{data.name}: {len(data.corpus)} docs, {len(data.queries)} queries, "
              f"model {kb.embedder.model_id}, index built in {build_s:.1f}s", file=sys.stderr)
        rows = []
        wanted = set(args.configs.split(",")) if args.configs else None
        for label, params in CONFIGS:
            if wanted is not None and label not in wanted:
                continue
            kb.embedder.clear_cache()  # every configuration pays for its query vectors
            scores = {"ndcg@10": [], "recall@10": [], "mrr@10": []}
            t0 = time.perf_counter()
            for qid, text in data.queries.items():
                if not text.strip():  # cmrc-trial has two empty questions
                    continue
                ranked = dedupe(h.doc_id for h in kb.search(text, top_k=30, **params))
                qrels = data.qrels.get(qid, {})
                scores["ndcg@10"].append(ndcg_at_k(ranked, qrels, 10))
                scores["recall@10"].append(recall_at_k(ranked, qrels, 10))
                scores["mrr@10"].append(mrr_at_k(ranked, qrels, 10))
            ms = (time.perf_counter() - t0) * 1000 / max(len(data.queries), 1)
            row = {"config": label, **{k: round(fmean(v), 4) for k, v in scores.items()}, "ms_per_query": round(ms, 2)}
            rows.append(row)
            print(f"{label:14s} nDCG@10 {row['ndcg@10']:.4f}  R@10 {row['recall@10']:.4f}  "
                  f"MRR@10 {row['mrr@10']:.4f}  {ms:6.1f} ms/q", file=sys.stderr)
        s = kb.settings.retrieval
        result = {"dataset": data.name, "queries": len(data.queries), "docs": len(data.corpus),
                  "model": kb.embedder.model_id, "default": {"fusion": s.fusion, "alpha": s.alpha, "rrf_k": s.rrf_k},
                  "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
