"""OCR quality and cost: character error rate, retrieval on scans vs text, pages/s, scheduling, hostile scans.

Reads a corpus written by bench/ocr_corpus.py (built first when missing) and
measures, in one process:

1. CER of every clean and noisy page against its known text (zh without
   whitespace, en with single spaces), and OCR seconds per page;
2. cmrc-trial as scans vs as text, each ingested into its own collection
   with the default embedder: nDCG@10 of the default search on the queries
   whose relevant documents were rendered;
3. parse throughput (OCR pages per second) with 1 and 2 parse workers
   (fake embedder, so only parsing is timed);
4. 200 small text files next to one N-page scan, one worker: when the last
   small file finished vs when the scan did, and the OCR page progress seen;
5. the hostile scans: each file's error code, and that the run went on.

    python bench/ocr_quality.py [--corpus DIR] [--pages 4] [--cmrc 40] [--book-pages 100] [--out FILE]

The machine may be shared: timings are noisy, quality numbers are not.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from statistics import fmean

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import ocr_corpus  # noqa: E402 - beside this script

from zhiku.engine.kb import KnowledgeBase  # noqa: E402
from zhiku.eval import scans  # noqa: E402
from zhiku.eval.beir import load_beir  # noqa: E402
from zhiku.eval.metrics import dedupe, ndcg_at_k  # noqa: E402
from zhiku.ingest.ocr import load_image  # noqa: E402
from zhiku.ingest.pipeline import IngestOptions, ingest_paths  # noqa: E402
from zhiku.ingest.report import NullObserver, PageProgress  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def measure_cer(corpus: Path) -> dict:
    rows = [json.loads(line) for line in (corpus / "truth.jsonl").read_text(encoding="utf-8").splitlines()]
    out: dict[str, list[float]] = {}
    seconds = []
    for row in rows:
        started = time.perf_counter()
        doc = load_image((corpus / row["file"]).read_bytes(), row["file"])[0]
        seconds.append(time.perf_counter() - started)
        text = "\n".join(e.text for e in doc.elements)
        cer = scans.char_error_rate(row["text"], text, keep_spaces=row["lang"] == "en")
        out.setdefault(f"{row['lang']}-{row['variant']}", []).append(cer)
        if row["lang"] == "en":
            nospace = scans.char_error_rate(row["text"], text, keep_spaces=False)
            out.setdefault(f"en-{row['variant']}-nospace", []).append(nospace)
        print(f"  {row['file']}: CER {cer:.4f} ({seconds[-1]:.1f}s)", file=sys.stderr)
    result = {k: round(fmean(v), 4) for k, v in sorted(out.items())}
    result["pages"] = len(rows)
    result["seconds_per_page_in_process"] = round(fmean(seconds[1:] or seconds), 2)  # the first loads the model
    return result


def measure_retrieval(corpus: Path, work: Path, workers: int) -> dict:
    data = load_beir(ocr_corpus.RETRIEVAL / "cmrc-trial")
    ids = {p.stem for p in (corpus / "cmrc-scan").glob("*.png")}
    queries = {q: t for q, t in data.queries.items() if data.qrels.get(q) and set(data.qrels[q]) <= ids}
    out: dict = {"documents": len(ids), "queries": len(queries)}
    for label, folder in (("text", "cmrc-text"), ("scan", "cmrc-scan")):
        with KnowledgeBase(work / label, collection=label) as kb:
            started = time.perf_counter()
            summary = ingest_paths(kb, [corpus / folder], IngestOptions(workers=workers, timeout_s=600))
            out[f"{label}_ingest_s"] = round(time.perf_counter() - started, 1)
            out[f"{label}_failed"] = summary.failed
            scores = []
            for qid, text in queries.items():
                ranked = dedupe(h.doc_id.rsplit(".", 1)[0] for h in kb.search(text, top_k=30))
                scores.append(ndcg_at_k(ranked, data.qrels[qid], 10))
            out[f"{label}_ndcg@10"] = round(fmean(scores), 4) if scores else None
            out["model"] = kb.embedder.model_id
    if out.get("text_ndcg@10") is not None and out.get("scan_ndcg@10") is not None:
        out["delta"] = round(out["text_ndcg@10"] - out["scan_ndcg@10"], 4)
    return out


def measure_throughput(corpus: Path, work: Path, files: int) -> dict:
    scans_dir = work / "throughput"
    scans_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted((corpus / "cmrc-scan").glob("*.png"))[:files]:
        shutil.copy(path, scans_dir / path.name)
    out: dict = {"pages": files}
    for workers in (1, 2):
        with KnowledgeBase(work / f"tp{workers}", collection="tp", embed__backend="fake") as kb:
            started = time.perf_counter()
            summary = ingest_paths(kb, [scans_dir], IngestOptions(workers=workers, timeout_s=600, optimize=False))
            seconds = time.perf_counter() - started
        out[f"workers_{workers}_pages_per_s"] = round(files / seconds, 3)
        out[f"workers_{workers}_failed"] = summary.failed
    return out


class _Timeline(NullObserver):
    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.done: dict[str, float] = {}
        self.pages: list[tuple[float, int, int]] = []

    def file_done(self, path: str, ok: bool) -> None:
        self.done[path] = time.perf_counter() - self.started

    def pages_done(self, progress: PageProgress) -> None:
        self.pages.append((time.perf_counter() - self.started, progress.done, progress.total))


def measure_scheduling(corpus: Path, work: Path, book_pages: int) -> dict:
    folder = work / "mixed-run"
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(200):
        (folder / f"note-{n:03d}.txt").write_text(f"Small note number {n} about topic {n % 17}.\n", encoding="utf-8")
    page = scans.render([ocr_corpus.paragraphs("squad-dev")[2]["text"]], cjk=False)[0].image
    (folder / "book.pdf").write_bytes(scans.image_pdf([page] * book_pages))
    timeline = _Timeline()
    with KnowledgeBase(work / "sched", collection="sched", embed__backend="fake") as kb:
        summary = ingest_paths(kb, [folder], IngestOptions(workers=1, timeout_s=120, optimize=False), timeline)
    small = [t for p, t in timeline.done.items() if not p.endswith("book.pdf")]
    book = next((t for p, t in timeline.done.items() if p.endswith("book.pdf")), None)
    return {
        "book_pages": book_pages, "small_files": len(small), "failed": summary.failed,
        "last_small_file_done_s": round(max(small), 1) if small else None,
        "book_done_s": round(book, 1) if book is not None else None,
        "page_progress_events": len(timeline.pages),
        "small_files_first": bool(small and book is not None and max(small) < book),
    }


def measure_hostile(corpus: Path, work: Path) -> dict:
    expected = json.loads((corpus / "hostile.json").read_text())
    folder = work / "hostile"
    shutil.copytree(corpus / "hostile", folder, dirs_exist_ok=True)
    (folder / "fine.txt").write_text("A good file next to the hostile ones.\n", encoding="utf-8")
    with KnowledgeBase(work / "hostile-kb", collection="h", embed__backend="fake") as kb:
        started = time.perf_counter()
        summary = ingest_paths(kb, [folder], IngestOptions(workers=2, timeout_s=20, optimize=False))
        seconds = time.perf_counter() - started
    got = {Path(p.path).name: {"code": p.code, "reason": p.reason} for p in summary.errors}
    return {
        "seconds": round(seconds, 1), "good_files_ingested": summary.new,
        "files": got, "all_as_expected": all(got.get(n, {}).get("code") == c for n, c in expected.items()),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=None, help="a corpus from ocr_corpus.py (default: build one)")
    ap.add_argument("--pages", type=int, default=4)
    ap.add_argument("--cmrc", type=int, default=40)
    ap.add_argument("--throughput-files", type=int, default=8)
    ap.add_argument("--book-pages", type=int, default=100)
    ap.add_argument("--only", default="cer,retrieval,throughput,scheduling,hostile")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ocr_quality.json")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="zhiku-ocr-"))
    corpus = args.corpus or work / "corpus"
    if not (corpus / "truth.jsonl").exists():
        ocr_corpus.main([str(corpus), "--pages", str(args.pages), "--cmrc", str(args.cmrc)])
    steps = {
        "cer": lambda: measure_cer(corpus),
        "retrieval": lambda: measure_retrieval(corpus, work, workers=2),
        "throughput": lambda: measure_throughput(corpus, work, args.throughput_files),
        "scheduling": lambda: measure_scheduling(corpus, work, args.book_pages),
        "hostile": lambda: measure_hostile(corpus, work),
    }
    results: dict = {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()[0]}
    for name in args.only.split(","):
        started = time.perf_counter()
        results[name] = steps[name]()
        print(f"{name} ({time.perf_counter() - started:.0f}s): {json.dumps(results[name], ensure_ascii=False)}",
              file=sys.stderr)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    results["load_avg_at_end"] = os.getloadavg()[0]
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
