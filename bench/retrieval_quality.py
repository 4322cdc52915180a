"""Retrieval quality in one table: squad-dev, cmrc-trial, identifiers, cross-lingual.

For each set it builds (or reuses) a collection with the configured embedder,
then scores BM25, dense, a fixed convex fusion (alpha 0.4, the old default)
and the default search (query-adaptive, with the ranking rules), plus a
reranker row when `--rerank` names one:

- squad-dev, cmrc-trial (shared BEIR sets): nDCG@10 over all queries;
- identifiers (bench/identifier_set.py, generated): exact match at rank 1;
- cross-lingual (bench/data/crosslingual.jsonl, hand-translated questions over
  a mixed corpus of cmrc-trial and squad-dev passages): target in the top 3,
  zh->en and en->zh.

    python bench/retrieval_quality.py [--sets squad-dev,cmrc-trial,identifiers,crosslingual]
        [--embed-backend e5-small] [--limit N] [--rerank fake] [--translate] [--out FILE]

`--translate` adds a cross-lingual row with query translation by the local
LLM (retrieval.translate_queries); its ms/q against the default row's is the
translation's cost per question.

Index build time (ingest chunks/s) is printed per set; a reused index prints 0.
`--ingest-vs sentence-transformers` indexes each freshly built set again with
that embedder, right after, and reports both speeds and the time ratio.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from statistics import fmean

sys.path.insert(0, str(Path(__file__).resolve().parent))
import identifier_set  # noqa: E402

from zhiku.engine.kb import KnowledgeBase  # noqa: E402
from zhiku.eval.beir import BeirDataset, load_beir  # noqa: E402
from zhiku.eval.metrics import dedupe, ndcg_at_k  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "retrieval"
CROSSLINGUAL = ROOT / "bench" / "data" / "crosslingual.jsonl"
RESULTS = ROOT / "bench" / "results"
SETS = ("squad-dev", "cmrc-trial", "identifiers", "crosslingual")
# Search options per row; "default" passes nothing, so the settings decide.
ROWS = [
    ("bm25", {"mode": "bm25"}),
    ("dense", {"mode": "dense"}),
    ("convex a=0.4", {"mode": "hybrid", "fusion": "convex", "alpha": 0.4}),
    ("default", {}),
]
# The cross-lingual row that also translates each question with the local LLM.
TRANSLATE_ROW = "default+translate"
# English passages in the cross-lingual corpus besides the targets (same articles: hard distractors).
CROSS_EN_DOCS = 256


def load_set(name: str, limit: int | None) -> BeirDataset:
    """A dataset by name: shared BEIR sets, the generated identifier set, or the cross-lingual set."""
    if name == "identifiers":
        return load_beir(identifier_set.write(RESULTS / "identifiers"), limit=limit)
    if name == "crosslingual":
        return crosslingual_set(limit)
    return load_beir(SHARED / name, limit=limit)


def crosslingual_set(limit: int | None) -> BeirDataset:
    """cmrc-trial's corpus plus squad-dev passages, with the hand-translated questions."""
    every = [json.loads(line) for line in CROSSLINGUAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    # A limit takes the first questions of each direction; the corpus is always
    # the whole set's, so every limit reuses one index.
    rows = [r for d in ("zh->en", "en->zh") for r in [r for r in every if r["direction"] == d][: (limit + 1) // 2]] \
        if limit else every
    squad, cmrc = load_beir(SHARED / "squad-dev"), load_beir(SHARED / "cmrc-trial")
    targets = {r["doc_id"] for r in every if r["dataset"] == "squad-dev"}
    others = sorted(set(squad.corpus) - targets)
    random.Random(5).shuffle(others)
    english = sorted(targets) + others[: max(0, CROSS_EN_DOCS - len(targets))]
    corpus = {**cmrc.corpus, **{d: squad.corpus[d] for d in english}}
    queries = {r["_id"]: r["text"] for r in rows}
    qrels = {r["_id"]: {r["doc_id"]: 1} for r in rows}
    data = BeirDataset("crosslingual", corpus, queries, qrels)
    data.directions = {r["_id"]: r["direction"] for r in rows}  # type: ignore[attr-defined]
    return data


def build(kb: KnowledgeBase, data: BeirDataset) -> tuple[float, int]:
    """Index the corpus; (seconds, chunks)."""
    t0 = time.perf_counter()
    ids = list(data.corpus)
    for i in range(0, len(ids), 256):
        part = ids[i : i + 256]
        kb.add_texts([data.corpus[d]["text"] for d in part], ids=part,
                     metadatas=[{"title": data.corpus[d]["title"]} for d in part])
    kb.optimize()
    return time.perf_counter() - t0, kb.count()


def score(kb: KnowledgeBase, data: BeirDataset, params: dict) -> dict[str, float]:
    """The set's metrics for one row of search options, and ms per query."""
    per: dict[str, list[float]] = {}
    directions = getattr(data, "directions", {})
    t0 = time.perf_counter()
    n = 0
    for qid, text in data.queries.items():
        if not text.strip():  # cmrc-trial has two empty questions
            continue
        n += 1
        ranked = dedupe(h.doc_id for h in kb.search(text, top_k=30, **params))
        qrels = data.qrels.get(qid, {})
        if data.name == "identifiers":
            per.setdefault("exact@1", []).append(float(bool(ranked) and qrels.get(ranked[0], 0) > 0))
        elif data.name == "crosslingual":
            hit = float(any(qrels.get(d, 0) > 0 for d in ranked[:3]))
            per.setdefault(f"top3 {directions[qid]}", []).append(hit)
        else:
            per.setdefault("ndcg@10", []).append(ndcg_at_k(ranked, qrels, 10))
    out = {k: round(fmean(v), 4) for k, v in sorted(per.items())}
    out["ms/q"] = round((time.perf_counter() - t0) * 1000 / max(n, 1), 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--limit", type=int, default=None, help="queries per set (default: all)")
    ap.add_argument("--embed-backend", default=None, help="default: the configured embedder")
    ap.add_argument("--rerank", default=None, help="add a row with this reranker (fake, cross-encoder)")
    ap.add_argument("--rerank-model", type=Path, default=None)
    ap.add_argument("--translate", action="store_true",
                    help="add a cross-lingual row with query translation by the local LLM")
    ap.add_argument("--ingest-vs", default=None, metavar="BACKEND",
                    help="also index each freshly built set with this embedder and compare ingest speed")
    ap.add_argument("--work", type=Path, default=RESULTS / "retrieval-index")
    ap.add_argument("--out", type=Path, default=RESULTS / "retrieval_quality.json")
    args = ap.parse_args()
    overrides: dict[str, object] = {"embed__backend": args.embed_backend} if args.embed_backend else {}
    rows = list(ROWS)
    if args.rerank:
        rows.append((f"default+rerank {args.rerank}", {}))
    if args.translate:
        rows.append((TRANSLATE_ROW, {}))
    report: dict[str, dict] = {}
    for name in args.sets.split(","):
        data = load_set(name, args.limit)
        work = args.work / (args.embed_backend or "default")
        with KnowledgeBase(work, collection=f"{data.name}-{data.fingerprint()}", **overrides) as kb:
            build_s, chunks = build(kb, data) if kb.count() == 0 else (0.0, kb.count())
            speed = f"{chunks / build_s:.1f} chunks/s" if build_s else "reused"
            print(f"{name}: {len(data.corpus)} docs ({chunks} chunks), {len(data.queries)} queries, "
                  f"model {kb.embedder.model_id}, index {build_s:.0f}s ({speed})", file=sys.stderr)
            result: dict[str, object] = {"model": kb.embedder.model_id, "build_s": round(build_s, 1), "chunks": chunks}
            if args.ingest_vs and build_s:
                result["ingest_vs"] = ingest_against(args.ingest_vs, data, build_s, chunks)
                print(f"  ingest against {args.ingest_vs}: {result['ingest_vs']}", file=sys.stderr)
            for label, params in rows:
                if label == TRANSLATE_ROW and name != "crosslingual":
                    continue  # only questions over the other language's chunks are translated
                kb.embedder.clear_cache()  # every row pays for its query vectors
                if label.startswith("default+rerank"):
                    from zhiku.engine.llm.rerank import build_reranker

                    kb.searcher.reranker = build_reranker(args.rerank, args.rerank_model)
                if label == TRANSLATE_ROW:
                    with translating(kb):
                        result[label] = score(kb, data, params)
                else:
                    result[label] = score(kb, data, params)
                kb.searcher.reranker = None if label.startswith("default+rerank") else kb.searcher.reranker
                print(f"  {label:24s} {result[label]}", file=sys.stderr)
            report[name] = result
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def ingest_against(backend: str, data: BeirDataset, build_s: float, chunks: int) -> dict[str, float]:
    """Index the same passages with `backend` in a scratch folder, right after; speeds and their ratio."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch, KnowledgeBase(scratch, collection="vs", embed__backend=backend) as kb:
        other_s, other_chunks = build(kb, data)
    docs = len(data.corpus)
    return {"docs/s": round(docs / build_s, 2), "chunks": chunks, f"{backend} docs/s": round(docs / other_s, 2),
            f"{backend} chunks": other_chunks, "time ratio": round(build_s / other_s, 2)}


@contextmanager
def translating(kb: KnowledgeBase) -> Iterator[None]:
    """Searches of `kb` translate questions for the other language's pool (retrieval.translate_queries)."""
    from zhiku.engine.crosslingual import LLMTranslator

    retrieval = kb.settings.retrieval
    kb.engine.generator.warm_up()  # the model loads here, not in the first question's time
    kb.searcher.translator = LLMTranslator(lambda: kb.engine.generator)
    retrieval.translate_queries = True
    try:
        yield
    finally:
        retrieval.translate_queries = False
        kb.searcher.translator = None


def print_table(report: dict[str, dict]) -> None:
    """One markdown table: a row per set and metric, a column per search configuration."""
    labels = [label for label, _ in ROWS] + sorted(
        {k for r in report.values() for k in r if k.startswith("default+")}
    )
    print("| set | metric | " + " | ".join(labels) + " |")
    print("|---|---|" + "---|" * len(labels))
    for name, result in report.items():
        metrics = [k for k in result[labels[0]] if k != "ms/q"] + ["ms/q"]
        for metric in metrics:
            cells = [str(result[label].get(metric, "")) if label in result else "" for label in labels]
            print(f"| {name} | {metric} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
