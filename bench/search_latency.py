"""Engine-level search latency at 10k and 100k chunks against LangChain's usual stack.

zhiku: KnowledgeBase.search (query embedding included) per mode on the edge
store after `optimize()`. Baseline, same data, same run: LangChain
EnsembleRetriever(BM25Retriever on rank_bm25, QdrantVectorStore on
qdrant-client's local mode) with the same MiniLM query embedding.

    python bench/search_latency.py [--sizes 10000,100000] [--queries 300] [--baseline-queries 20]
        [--modes hybrid,dense,bm25] [--work DIR] [--raw]

Side by side with an older commit: build that commit's index with its own
copy of this script, then time both with this one (`--work` names the index
folder; an index whose count matches is reused, so nothing is rebuilt), in
alternating runs. `--raw` keeps every query's time, so the queries with
identifiers or names (which read payloads) can be timed apart.
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
from corpus import ROOT, chunk_vectors, chunks, queries  # noqa: E402

from zhiku.engine.kb import KnowledgeBase  # noqa: E402
from zhiku.engine.types import Chunk  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def build_zhiku(records, dense, work: Path) -> KnowledgeBase:  # type: ignore[no-untyped-def]
    kb = KnowledgeBase(work, collection=f"lat{len(records)}")
    if kb.count() != len(records):
        t0 = time.perf_counter()
        batch = 4096
        for i in range(0, len(records), batch):
            part = records[i : i + batch]
            cs = [Chunk(doc_id=r["id"], chunk_id=f"{r['id']}#0", chunk_index=0, text=r["text"], content_hash=r["id"],
                        chunk_count=1, title=r["title"]) for r in part]
            kb.add_chunks(cs, dense=dense[i : i + batch])
        kb.flush()
        t1 = time.perf_counter()
        kb.optimize()
        print(f"  zhiku: wrote {len(records)} in {t1 - t0:.1f}s, optimize {time.perf_counter() - t1:.1f}s", file=sys.stderr)
    return kb


def time_calls(fn, qs: list[str], cpu: list[float] | None = None) -> list[float]:  # type: ignore[no-untyped-def]
    """Wall-clock ms per call; `cpu`, if given, gets this process's CPU ms per call (all its threads)."""
    fn(qs[0])  # warm-up outside the measurement
    out = []
    for q in qs[1:]:
        c0, t0 = time.process_time(), time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t0) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - c0) * 1000)
    return out


def baseline(records, dense, embedder, qs: list[str], work: Path) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_community.retrievers import BM25Retriever
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient
    from qdrant_client.models import Distance, VectorParams

    class MiniLM(Embeddings):
        def embed_documents(self, texts):  # type: ignore[no-untyped-def]
            return embedder.embed_documents(texts).tolist()

        def embed_query(self, text):  # type: ignore[no-untyped-def]
            # Bypass zhiku's query cache so the baseline pays what zhiku pays.
            return embedder._embed_batch([text])[0].tolist()

    docs = [Document(page_content=f"{r['title']}\n{r['text']}", metadata={"id": r["id"]}) for r in records]
    t0 = time.perf_counter()
    bm25 = BM25Retriever.from_documents(docs, k=10)
    shutil.rmtree(work, ignore_errors=True)
    client = QdrantClient(path=str(work))
    client.create_collection("lc", vectors_config=VectorParams(size=dense.shape[1], distance=Distance.COSINE))
    store = QdrantVectorStore(client=client, collection_name="lc", embedding=MiniLM())
    # Precomputed vectors: the baseline's build cost is not what is measured.
    from qdrant_client.models import PointStruct
    for i in range(0, len(docs), 2048):
        client.upsert("lc", [PointStruct(id=j, vector=dense[j].tolist(),
                                          payload={"page_content": docs[j].page_content, "metadata": docs[j].metadata})
                             for j in range(i, min(i + 2048, len(docs)))])
    ensemble = EnsembleRetriever(retrievers=[bm25, store.as_retriever(search_kwargs={"k": 10})], weights=[0.5, 0.5])
    print(f"  baseline built in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    ms = time_calls(lambda q: ensemble.invoke(q), qs)
    client.close()
    return {"p50_ms": median(ms), "p99_ms": pct(ms, 99), "n": len(ms)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--baseline-queries", type=int, default=20)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--modes", default="hybrid,dense,bm25")
    ap.add_argument("--work", type=Path, default=RESULTS / "latency-index")
    ap.add_argument("--raw", action="store_true", help="keep each query and its time in the report")
    ap.add_argument("--out", type=Path, default=RESULTS / "search_latency.json")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    pool = chunks(max(sizes))
    report = {"sizes": {}}
    work = args.work
    for size in sizes:
        records = pool[:size]
        print(f"== {size} chunks", file=sys.stderr)
        probe = KnowledgeBase(work, collection=f"lat{size}")
        dense = chunk_vectors(records, probe.embedder)
        probe.close()
        kb = build_zhiku(records, dense, work)
        row: dict[str, object] = {}
        offset = 0
        for mode in ("hybrid", "dense", "bm25"):
            qs = queries(args.queries + 1, offset=offset)
            offset += args.queries + 1  # fresh questions per mode: no query-cache hits
            if mode not in args.modes.split(","):
                continue
            cpu: list[float] = []
            ms = time_calls(lambda q: kb.search(q, top_k=10, mode=mode), qs, cpu)
            # CPU time per query: on a shared, loaded machine it moves far less than wall time.
            row[mode] = {"p50_ms": round(median(ms), 2), "p99_ms": round(pct(ms, 99), 2), "n": len(ms),
                         "cpu_p50_ms": round(median(cpu), 2), "cpu_p99_ms": round(pct(cpu, 99), 2)}
            if args.raw:
                row[mode]["raw"] = [(q, round(m, 3), round(c, 3)) for q, m, c in zip(qs[1:], ms, cpu)]  # type: ignore[index]
            print(f"  zhiku {mode:6s} p50 {median(ms):6.2f} ms  p99 {pct(ms, 99):6.2f} ms  "
                  f"(CPU p50 {median(cpu):6.2f} ms  p99 {pct(cpu, 99):6.2f} ms)", file=sys.stderr)
        if not args.no_baseline:
            qs = queries(args.baseline_queries + 1, offset=offset)
            base = baseline(records, dense, kb.embedder, qs, RESULTS / "latency-baseline")
            row["langchain_ensemble"] = {k: round(v, 2) for k, v in base.items()}
            row["speedup_p50"] = round(base["p50_ms"] / row["hybrid"]["p50_ms"], 1)  # type: ignore[index]
            print(f"  langchain p50 {base['p50_ms']:.1f} ms p99 {base['p99_ms']:.1f} ms -> zhiku hybrid is "
                  f"{row['speedup_p50']}x faster at p50", file=sys.stderr)
        kb.close()
        report["sizes"][str(size)] = row
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
