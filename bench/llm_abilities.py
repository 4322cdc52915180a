"""extract and classify with the real default model on the committed fixtures.

    python bench/llm_abilities.py                 # both
    python bench/llm_abilities.py --only extract --limit 10

extract: share of the 50 cases with schema-valid JSON (retries allowed), mean
attempts, and field accuracy against the expected values. classify: accuracy
on the 120 labelled headlines, mean confidence of right and wrong answers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "llm"
RESULTS = ROOT / "bench" / "results"


def _same(got: object, want: object) -> bool:
    if isinstance(want, str) and isinstance(got, str):
        return want.strip().lower() in got.strip().lower() or got.strip().lower() in want.strip().lower()
    if isinstance(want, (int, float)) and not isinstance(want, bool) and isinstance(got, (int, float)):
        return abs(float(got) - float(want)) < 1e-6
    return got == want


def bench_extract(service, limit: int | None, offset: int = 0) -> dict:  # type: ignore[no-untyped-def]
    cases = [json.loads(l) for l in (FIXTURES / "extract_cases.jsonl").read_text(encoding="utf-8").splitlines()]
    cases = cases[offset : offset + limit] if limit else cases[offset:]
    rows = []
    for i, case in enumerate(cases):
        start = time.perf_counter()
        result = service.extract(case["text"], case["schema"])
        fields = [_same((result.data or {}).get(k), v) for k, v in case["expected"].items()]
        rows.append({"valid": result.valid, "attempts": result.attempts, "fields_ok": fields,
                     "seconds": time.perf_counter() - start, "data": result.data, "errors": result.errors})
        print(f"extract {i + 1}/{len(cases)} valid={result.valid} attempts={result.attempts} {result.data}", file=sys.stderr)
    fields = [ok for r in rows for ok in r["fields_ok"]]
    return {
        "cases": len(rows),
        "valid_rate": statistics.fmean(r["valid"] for r in rows),
        "first_try_valid_rate": statistics.fmean(r["valid"] and r["attempts"] == 1 for r in rows),
        "mean_attempts": statistics.fmean(r["attempts"] for r in rows),
        "field_accuracy": statistics.fmean(fields) if fields else 0.0,
        "seconds_p50": statistics.median(r["seconds"] for r in rows),
        "rows": rows,
    }


def bench_classify(service, limit: int | None) -> dict:  # type: ignore[no-untyped-def]
    labels = json.loads((FIXTURES / "classify_labels.json").read_text(encoding="utf-8"))
    items = [json.loads(l) for l in (FIXTURES / "classify_topics.jsonl").read_text(encoding="utf-8").splitlines()]
    items = items[:: max(1, len(items) // limit)] if limit else items
    rows = []
    for i, item in enumerate(items):
        start = time.perf_counter()
        result = service.classify(item["text"], labels)
        rows.append({"gold": item["label"], "pred": result.label, "confidence": result.confidence,
                     "seconds": time.perf_counter() - start})
        print(f"classify {i + 1}/{len(items)} gold={item['label']} pred={result.label} conf={result.confidence:.2f}", file=sys.stderr)
    right = [r for r in rows if r["pred"] == r["gold"]]
    wrong = [r for r in rows if r["pred"] != r["gold"]]
    return {
        "items": len(rows),
        "accuracy": len(right) / len(rows),
        "mean_confidence_right": statistics.fmean(r["confidence"] for r in right) if right else None,
        "mean_confidence_wrong": statistics.fmean(r["confidence"] for r in wrong) if wrong else None,
        "seconds_p50": statistics.median(r["seconds"] for r in rows),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["extract", "classify"])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--offset", type=int, default=0, help="first extract case (to split a run)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "llm_abilities.json")
    args = parser.parse_args(argv)

    from zhiku.engine.llm import build_generator
    from zhiku.engine.llm.abilities import build_llm
    from zhiku.engine.settings import load_settings

    settings = load_settings(llm__threads=args.threads, llm__context_window=2048)
    service = build_llm(settings, build_generator(settings.llm))
    service.generator.warm_up()
    out: dict = {"model": service.generator.model_id}
    if args.only in (None, "extract"):
        out["extract"] = bench_extract(service, args.limit, args.offset)
    if args.only in (None, "classify"):
        out["classify"] = bench_classify(service, args.limit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    print(json.dumps({k: ({kk: vv for kk, vv in v.items() if kk != "rows"} if isinstance(v, dict) else v)
                      for k, v in out.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
