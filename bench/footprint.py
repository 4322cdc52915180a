"""Bytes per chunk by part of a collection (dense vectors, HNSW graph, BM25 sparse index,
payloads, WAL), measured on the embedded store and scaled to a million chunks.

The embedded engine writes the same segment formats as a Qdrant server, so this
is what one copy of a collection takes on a server (deploy/README.md's sizing
table). Chunks are real squad-dev text (bench/corpus.py), so BM25 vectors and
payloads have real sizes; dense vectors are random unit vectors of the default
model's dimension (their size does not depend on their values), so no model runs.

    python bench/footprint.py [--size 20000] [--dim 384]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import ROOT, chunks  # noqa: E402

from zhiku.engine.engine import Engine  # noqa: E402
from zhiku.engine.settings import load_settings  # noqa: E402
from zhiku.engine.types import Chunk  # noqa: E402

def part_of(path: Path) -> str:
    """The shard part a file belongs to: the folder under its segment (`vector_storage-dense`,
    `vector_index-bm25`, `payload_storage`, ...), or `wal`, or `other`."""
    parts = path.parts
    if "segments" in parts and len(parts) > parts.index("segments") + 2:
        return parts[parts.index("segments") + 2]
    return "wal" if "wal" in parts else "other"


def allocated(path: Path) -> int:
    """Bytes really on disk (mmap files are preallocated sparse files; st_size overstates)."""
    return path.stat().st_blocks * 512


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "footprint.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp), embed={"backend": "fake", "fake_dim": args.dim},
                                 store={"backend": "edge"})
        engine = Engine(settings)
        try:
            kb = engine.kb("footprint", create=True)
            records = chunks(args.size)
            rng = np.random.default_rng(7)
            t0 = time.perf_counter()
            for i in range(0, args.size, 4096):
                part = records[i : i + 4096]
                dense = rng.standard_normal((len(part), args.dim)).astype(np.float32)
                dense /= np.linalg.norm(dense, axis=1, keepdims=True)
                cs = [Chunk(doc_id=r["id"], chunk_id=f"{r['id']}#0", chunk_index=0, text=r["text"],
                            content_hash=r["id"], chunk_count=1, title=r["title"]) for r in part]
                kb.add_chunks(cs, dense=dense)
            kb.flush()
            kb.optimize()
            build_s = time.perf_counter() - t0
        finally:
            engine.close()
        sizes: dict[str, int] = defaultdict(int)
        for f in Path(tmp).rglob("*"):
            if f.is_file():
                sizes[part_of(f.relative_to(tmp))] += allocated(f)
    per_chunk = {k: round(v / args.size, 1) for k, v in sorted(sizes.items())}
    per_million_gib = {k: round(v / args.size * 1e6 / 2**30, 2) for k, v in sorted(sizes.items())}
    report = {"size": args.size, "dim": args.dim, "build_s": round(build_s, 1),
              "mean_chars_per_chunk": round(sum(len(r["text"]) for r in records) / args.size),
              "bytes_per_chunk": per_chunk, "gib_per_million_chunks": per_million_gib,
              "total_gib_per_million": round(sum(sizes.values()) / args.size * 1e6 / 2**30, 2)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
