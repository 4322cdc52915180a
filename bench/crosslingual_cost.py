"""What the dictionary step of the cross-lingual pool costs per question (engine/crosslingual.py, step 2).

On the cross-lingual bench index (bench/retrieval_quality.py --sets
crosslingual builds it), each question's other-language pool is built with
and without the dictionary, alternating, several rounds; also the whole
default search with and without it. Wall-clock ms per question, median and
p99, and the glossing alone (no store call). Query vectors are computed
before the timed calls (the models' time is the same either way).

    python bench/crosslingual_cost.py [--rounds 3] [--work DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
import retrieval_quality as rq  # noqa: E402

from zhiku.engine.crosslingual import other_language_pool  # noqa: E402
from zhiku.engine.dictionary import cedict, gloss_terms  # noqa: E402
from zhiku.engine.filters import MatchAny  # noqa: E402
from zhiku.engine.kb import KnowledgeBase  # noqa: E402
from zhiku.engine.query import analyse  # noqa: E402
from zhiku.engine.search import LANGUAGE_KEY, OTHER_LANGUAGES  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(median(ms), 3), "p99_ms": round(pct(ms, 99), 3), "n": len(ms)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", type=Path, default=rq.RESULTS / "retrieval-index" / "default")
    ap.add_argument("--out", type=Path, default=rq.RESULTS / "crosslingual_cost.json")
    args = ap.parse_args()
    data = rq.load_set("crosslingual", None)
    dictionary = cedict()
    timings: dict[str, list[float]] = {k: [] for k in ("gloss", "pool", "pool+dictionary", "search", "search+dictionary")}
    with KnowledgeBase(args.work, collection=f"{data.name}-{data.fingerprint()}") as kb:
        s = kb.searcher
        questions = [analyse(text) for text in data.queries.values()]
        for _ in range(args.rounds):
            for q in questions:
                target = OTHER_LANGUAGES[q.language][0]
                where = (MatchAny(LANGUAGE_KEY, (target,)),)
                kb.embedder.embed_query_across(q.text)  # the vector is cached for both: not what is timed
                t0 = time.perf_counter()
                gloss_terms(dictionary.gloss_question(q.text, q.language), s.tokenize)
                timings["gloss"].append((time.perf_counter() - t0) * 1000)
                for label, d in (("pool", None), ("pool+dictionary", dictionary)):
                    t0 = time.perf_counter()
                    other_language_pool(kb.store, kb.embedder, s.collection, q.text, where, target, False, 0.4,
                                        s.tokenize, None, d, q.language)
                    timings[label].append((time.perf_counter() - t0) * 1000)
                kb.search(q.text, top_k=10)  # both timed searches then find the query vectors cached
                for label, on in (("search", False), ("search+dictionary", True)):
                    kb.settings.retrieval.dictionary_translation = on
                    t0 = time.perf_counter()
                    kb.search(q.text, top_k=10)
                    timings[label].append((time.perf_counter() - t0) * 1000)
    report = {label: summary(ms) for label, ms in timings.items()}
    for label, row in report.items():
        print(f"{label:18s} p50 {row['p50_ms']:7.3f} ms  p99 {row['p99_ms']:7.3f} ms  (n {row['n']})", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
