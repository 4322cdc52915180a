"""The embedded store at scale: build, optimize, hybrid latency, HNSW recall, memory.

Chunks are real squad-dev sentences (bench/corpus.py), their vectors random
convex mixes of real MiniLM sentence vectors (distinct_vectors: plain means
would make most of a million vectors exact twins), their BM25 vectors encoded by
the engine's own write path; nothing is embedded per chunk, so a million
chunks fit in an evening on two cores. Queries are real questions embedded by
the real model at search time.

Reported per size: RSS (process resident memory) before the build, after it
and after `optimize()`; the store's share per million chunks; build and
optimize seconds; hybrid p50/p99 of `KnowledgeBase.search` (query embedding
included) and of the store legs alone; recall@10 of the HNSW dense leg against
exact (numpy) search over the same vectors (by score: see recall_at_10).

Then the same searches and recall again for each search-time HNSW beam width
in `--ef` (the `store.hnsw_ef` setting; 0 is Qdrant's default, the index's
ef_construct), so the table shows what recall each costs.

    python bench/scale.py [--chunks 1000000] [--queries 200] [--batch 4096] [--ef 0,64,128,256] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from statistics import median

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import ROOT, chunk_vectors, iter_chunks, queries, sentence_vectors, sentences  # noqa: E402

from zhiku.engine.identity import point_id  # noqa: E402
from zhiku.engine.kb import KnowledgeBase  # noqa: E402
from zhiku.engine.types import Chunk  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# Cosine scores that differ by less than float32 noise count as a tie.
TIE_EPS = 1e-5


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def distinct_vectors(records: list[dict], sent: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each chunk's vector: a random convex mix (Dirichlet weights) of its sentence vectors, normalised.

    corpus.chunk_vectors takes the plain mean, and with chunks drawn from ~10k
    sentences that gives each vector dozens of exact twins at a million chunks
    (85 % duplicates): an HNSW graph over so many identical points loses recall
    that no real corpus would. Random weights keep every vector in the span of
    its real sentences but make no two alike.
    """
    out = np.stack([rng.dirichlet(np.ones(len(r["sentences"]))) @ sent[r["sentences"]] for r in records])
    out = out.astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def build(kb: KnowledgeBase, n: int, batch: int, sent: np.ndarray, mixed: bool) -> np.ndarray:
    """Write n chunks in batches; returns their dense matrix (for exact search)."""
    matrix = np.empty((n, sent.shape[1]), dtype=np.float32)
    records: list[dict] = []
    t0, done = time.perf_counter(), 0
    rng = np.random.default_rng(13)

    def flush_batch() -> None:
        nonlocal done
        dense = distinct_vectors(records, sent, rng) if mixed else chunk_vectors(records, kb.embedder, sent)
        matrix[done : done + len(records)] = dense
        cs = [Chunk(doc_id=r["id"], chunk_id=f"{r['id']}#0", chunk_index=0, text=r["text"],
                    content_hash=r["id"], chunk_count=1, title=r["title"]) for r in records]
        kb.add_chunks(cs, dense=dense)
        done += len(records)
        records.clear()
        if done % (batch * 25) == 0 or done == n:
            rate = done / (time.perf_counter() - t0)
            print(f"  wrote {done}/{n} ({rate:.0f} chunks/s, RSS {rss_mb():.0f} MiB)", file=sys.stderr)

    for record in iter_chunks(n, pool=sentences()):
        records.append(record)
        if len(records) == batch:
            flush_batch()
    if records:
        flush_batch()
    kb.flush()
    return matrix


def recall_at_10(kb: KnowledgeBase, matrix: np.ndarray, qvecs: np.ndarray) -> tuple[float, float]:
    """Recall@10 of the dense leg against exact cosine search: (by score, by id).

    Chunks that share all their sentences have identical vectors, and at a
    million chunks from ~10k sentences each vector has dozens of twins, so
    the exact top-10 is one arbitrary pick from a tie. By score (the standard
    fix): a hit counts when it scores at least the exact 10th best. By id is
    also given, for comparison.
    """
    by_score = by_id = 0
    for q in qvecs:
        scores = matrix @ q
        exact = np.argpartition(-scores, 10)[:10]
        tenth = float(scores[exact].min())
        want = {point_id(f"c{i}#0") for i in exact}
        got = kb.store.query_dense(kb.collection, q, 10, with_payload=False)
        by_score += sum(p.score >= tenth - TIE_EPS for p in got)
        by_id += len(want & {p.id for p in got})
    n = 10 * len(qvecs)
    return by_score / n, by_id / n


def timed_searches(kb: KnowledgeBase, qs: list[str]) -> tuple[list[float], list[dict]]:
    """Wall milliseconds of each hybrid search (query embedding included) and its stage timings."""
    kb.embedder.clear_cache()  # each sweep embeds its queries with the model again
    totals, legs = [], []
    for q in qs:
        t = time.perf_counter()
        _, timings = kb.search_debug(q, top_k=10, mode="hybrid")
        totals.append((time.perf_counter() - t) * 1000)
        legs.append(timings)
    return totals, legs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--work", type=Path, default=RESULTS / "scale-index")
    ap.add_argument("--ef", default="0,64,128,256", help="search-time HNSW beam widths to sweep (0: default)")
    ap.add_argument("--vectors", choices=["distinct", "mean"], default="distinct",
                    help="chunk vectors: random convex mixes of their sentences (default) or plain means")
    ap.add_argument("--keep", action="store_true", help="Keep the built index.")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    n = args.chunks
    shutil.rmtree(args.work, ignore_errors=True)
    kb = KnowledgeBase(args.work, collection=f"scale{n}")
    kb.warm_up()
    sent = sentence_vectors(kb.embedder)
    qs = queries(args.queries + 1)
    qvecs = np.stack([kb.embedder.embed_query(q) for q in qs]).astype(np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    kb.embedder.clear_cache()  # timed searches embed their queries with the model, not from the cache
    rss0 = rss_mb()
    print(f"== {n} chunks (RSS before build {rss0:.0f} MiB)", file=sys.stderr)

    t0 = time.perf_counter()
    matrix = build(kb, n, args.batch, sent, args.vectors == "distinct")
    build_s = time.perf_counter() - t0
    matrix_mb = matrix.nbytes / 2**20  # the bench's own copy, not the store's
    rss_built = rss_mb()
    t1 = time.perf_counter()
    kb.optimize()
    optimize_s = time.perf_counter() - t1
    rss_opt = rss_mb()
    print(f"  build {build_s:.0f}s, optimize {optimize_s:.0f}s, RSS {rss_opt:.0f} MiB", file=sys.stderr)

    kb.search(qs[0], top_k=10, mode="hybrid")  # warm-up outside the measurement
    sweep = []
    for ef in [int(x) for x in args.ef.split(",") if x.strip()]:
        kb.store.settings = kb.store.settings.model_copy(update={"hnsw_ef": ef or None})
        hybrid, legs = timed_searches(kb, qs[1:])
        recall, recall_by_id = recall_at_10(kb, matrix, qvecs[1:])
        row = {
            "hnsw_ef": ef or "default",
            "hybrid_ms": {"p50": round(median(hybrid), 2), "p99": round(pct(hybrid, 99), 2), "n": len(hybrid)},
            # The legs overlap in hybrid mode, so "without the query embedding" is total minus embed.
            "search_without_embed_ms_p50": round(median(t["total_ms"] - t.get("embed_ms", 0.0) for t in legs), 2),
            "hybrid_stage_ms_p50": {k: round(median(t[k] for t in legs), 2) for k in legs[0]},
            "dense_recall_at_10_vs_exact": round(recall, 4),
            "dense_recall_at_10_by_id": round(recall_by_id, 4),
        }
        print(f"  ef {row['hnsw_ef']}: recall@10 {recall:.4f}, hybrid p50 {row['hybrid_ms']['p50']} ms",
              file=sys.stderr)
        sweep.append(row)
    distinct = len(np.unique(matrix[: min(n, 200_000)].round(5), axis=0)) / min(n, 200_000)
    store_mb = rss_opt - rss0 - matrix_mb
    report = {
        "chunks": n,
        "build_s": round(build_s, 1),
        "optimize_s": round(optimize_s, 1),
        "rss_mb": {"before_build": round(rss0), "after_build": round(rss_built), "after_optimize": round(rss_opt),
                   "bench_matrix": round(matrix_mb)},
        "store_rss_mb_per_million": round(store_mb * 1_000_000 / n),
        "disk_mb_per_million": round(dir_mb(args.work) * 1_000_000 / n),
        "by_hnsw_ef": sweep,
        "distinct_vectors_fraction": round(distinct, 3),
    }
    kb.close()
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    out = args.out or RESULTS / f"scale-{n}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
