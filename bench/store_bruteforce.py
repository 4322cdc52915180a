"""EdgeStore query latency on random points: brute force, then after optimize().

One hybrid-ish query = query_dense(limit 100) + query_sparse(limit 100), on one
search thread, payloads included, as the engine issues them before fusion.

    python bench/store_bruteforce.py [--points 20000] [--dim 384] [--queries 50]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from statistics import median

import numpy as np

from zhiku.engine.settings import StoreSettings
from zhiku.engine.stores.base import CollectionSpec
from zhiku.engine.stores.edge import EdgeStore
from zhiku.engine.types import Point, SparseVector


def random_points(n: int, dim: int, rng: np.random.Generator) -> list[Point]:
    """Unit-norm dense vectors and ~30-term sparse vectors over a 20k vocabulary."""
    dense = rng.normal(size=(n, dim)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    points = []
    for i in range(n):
        terms = np.unique(rng.zipf(1.3, size=30) % 20_000)
        weights = rng.uniform(0.5, 2.0, size=len(terms))
        sparse = SparseVector(tuple(int(t) for t in terms), tuple(float(w) for w in weights))
        payload = {"doc_id": f"d{i // 4}", "text": f"chunk {i}", "meta": {"n": i}}
        points.append(Point(str(uuid.uuid4()), dense[i], sparse, payload))
    return points


def timed_queries(
    store: EdgeStore, name: str, dim: int, n: int, rng: np.random.Generator
) -> list[tuple[float, float]]:
    """(dense ms, sparse ms) per query."""
    out = []
    for _ in range(n):
        q = rng.normal(size=dim).astype(np.float32)
        terms = tuple(int(t) for t in np.unique(rng.zipf(1.3, size=6) % 20_000))
        sq = SparseVector(terms, (1.0,) * len(terms))
        t0 = time.perf_counter()
        store.query_dense(name, q, 100)
        t1 = time.perf_counter()
        store.query_sparse(name, sq, 100)
        out.append(((t1 - t0) * 1000, (time.perf_counter() - t1) * 1000))
    return out


def report(label: str, times: list[tuple[float, float]]) -> None:
    dense, sparse = [t[0] for t in times], [t[1] for t in times]
    both = [d + s for d, s in times]
    print(
        f"{label}: dense+sparse median {median(both):.2f} ms (dense {median(dense):.2f}, "
        f"sparse {median(sparse):.2f}), max {max(both):.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeStore(Path(tmp), StoreSettings(search_threads=1))
        store.create_collection(CollectionSpec("bench", args.dim))
        t0 = time.perf_counter()
        store.upsert("bench", random_points(args.points, args.dim, rng))
        store.flush("bench")
        print(f"upsert+flush {args.points} points: {time.perf_counter() - t0:.1f} s")
        timed_queries(store, "bench", args.dim, 3, rng)  # warm up
        brute = timed_queries(store, "bench", args.dim, args.queries, rng)
        report("brute force", brute)
        t0 = time.perf_counter()
        store.optimize("bench")
        print(f"optimize: {time.perf_counter() - t0:.1f} s")
        timed_queries(store, "bench", args.dim, 3, rng)
        hnsw = timed_queries(store, "bench", args.dim, args.queries, rng)
        report("after optimize", hnsw)
        store.close()


if __name__ == "__main__":
    main()
