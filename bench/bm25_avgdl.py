"""BM25 length normalisation: which fixed avgdl should a new collection get?

Builds one collection per variant over the same chunks and the same dense
vectors (embedded once), then scores BM25-only and the default hybrid search
(nDCG@10, as bench/retrieval_quality.py does). Variants:

- `running`: the old behaviour, a running mean updated per add of 512
  documents (what bench/retrieval_quality.py's build did);
- `oracle`: the collection's true mean chunk length (known only afterwards);
- `chunk x F`: F times the chunk size in embedder tokens (fixed up front);
- `const N`: a constant.

    python bench/bm25_avgdl.py --data DIR [--limit N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from statistics import fmean

import numpy as np

from zhiku.engine.engine import Engine
from zhiku.engine.identity import indexed_text, text_hash
from zhiku.engine.manifest import BM25Params, Manifest
from zhiku.engine.settings import load_settings
from zhiku.engine.tokenize import tokenize
from zhiku.engine.writes import WriteSession, open_manifest
from zhiku.eval.beir import load_beir
from zhiku.eval.metrics import dedupe, ndcg_at_k

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "retrieval" / "squad-dev"
RESULTS = ROOT / "bench" / "results"
FACTORS = (0.25, 0.375, 0.5, 0.75)
CONSTANTS = (100.0,)
BUILD_BATCH = 512


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, kind, default in (("--data", Path, DEFAULT_DATA), ("--limit", int, None),
                                ("--work", Path, RESULTS / "bm25-avgdl-index"), ("--out", Path, RESULTS / "bm25_avgdl.json")):
        ap.add_argument(flag, type=kind, default=default)
    ap.add_argument("--factors", default=",".join(map(str, FACTORS)), help="chunk-size factors to try")
    args = ap.parse_args()
    data = load_beir(args.data, limit=args.limit)
    # The edge store (Qdrant's engine in process) in a scratch dir: fast enough for every variant.
    settings = load_settings(data_dir=Path(tempfile.mkdtemp(prefix="bm25-avgdl-")), store={"backend": "edge"})
    engine = Engine(settings)
    probe = "probe"
    open_manifest(engine.store, probe, settings, engine.embedder)
    kb = engine.kb(probe)
    ids = list(data.corpus)
    docs = []
    for d in ids:
        text, meta = data.corpus[d]["text"], {"title": data.corpus[d]["title"]}
        docs.append(kb.chunk_document(d, text, text_hash(text, meta), meta))
    chunks = [c for cs in docs for c in cs]
    t0 = time.perf_counter()
    cache = args.work / f"{data.name}-{data.fingerprint()}-{engine.embedder.model_id.replace('/', '_')}.npy"
    if cache.is_file():
        dense = np.load(cache)
    else:
        dense = engine.embedder.embed_documents([indexed_text(c) for c in chunks])
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, dense)
    lengths = [len(tokenize(indexed_text(c))) for c in chunks]
    oracle = fmean(lengths)
    print(f"{data.name}: {len(ids)} docs, {len(chunks)} chunks, {len(data.queries)} queries, "
          f"mean chunk length {oracle:.1f} BM25 tokens, embedded in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    size = settings.chunk.size
    variants: list[tuple[str, float | None]] = [("running", None), ("oracle", oracle)]
    factors = [float(f) for f in args.factors.split(",") if f]
    variants += [(f"chunk x {f}", f * size) for f in factors] + [(f"const {c:g}", c) for c in CONSTANTS]
    rows = []
    for label, avgdl in variants:
        name = f"v{len(rows)}"
        fixed = settings.model_copy(update={"retrieval": settings.retrieval.model_copy(
            update={"bm25_avgdl": avgdl or 1.0})})
        manifest = open_manifest(engine.store, name, fixed, engine.embedder)
        _build(engine, name, manifest, docs, dense, avgdl)
        target = engine.kb(name)
        row: dict[str, object] = {"variant": label, "avgdl": None if avgdl is None else round(avgdl, 1)}
        for mode in ("bm25", "hybrid"):
            scores = []
            for qid, text in data.queries.items():
                # A blank query finds nothing (cmrc-trial has one); it scores 0 in every variant.
                hits = target.search(text, top_k=30, mode=mode) if text.strip() else []
                ranked = dedupe(h.doc_id for h in hits)
                scores.append(ndcg_at_k(ranked, data.qrels.get(qid, {}), 10))
            row[f"{mode} ndcg@10"] = round(fmean(scores), 4)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    engine.close()
    result = {"dataset": data.name, "queries": len(data.queries), "chunks": len(chunks),
              "chunk_size": size, "mean_chunk_tokens": round(oracle, 1), "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _build(engine: Engine, name: str, manifest: Manifest, docs: list, dense, avgdl: float | None) -> None:  # type: ignore[type-arg, no-untyped-def]
    """Write every chunk; with avgdl None, as the old running mean did (updated per add of BUILD_BATCH docs)."""
    total, count, offset = 0, 0, 0
    for i in range(0, len(docs), BUILD_BATCH):
        part = [c for cs in docs[i : i + BUILD_BATCH] for c in cs]
        if avgdl is None:
            for c in part:
                total += len(tokenize(indexed_text(c)))
                count += 1
            bm25 = BM25Params(k1=manifest.bm25.k1, b=manifest.bm25.b, avgdl=total / count)
            batch_manifest = manifest.model_copy(update={"bm25": bm25})
        else:
            batch_manifest = manifest
        session = WriteSession(engine.store, name, engine.settings, engine.embedder, batch_manifest)
        session.write_chunks(part, dense[offset : offset + len(part)])
        offset += len(part)
    engine.store.flush(name)


if __name__ == "__main__":
    raise SystemExit(main())
