"""Ingest throughput: zhiku's whole pipeline vs the raw embedder vs LangChain's usual pipeline.

Builds a mixed corpus of real documents (SQuAD-dev articles rendered to
md/html/docx/pdf, plus plain-text files from Debian's /usr/share/doc), then in
one process, on the same files and the same MiniLM model:

1. zhiku ingest (parse pool -> batch embed -> batch upsert, overlapped), fresh store;
2. the raw embedder alone over exactly the chunks zhiku stored (the ceiling);
3. zhiku again over the unchanged corpus (should embed nothing, quickly);
4. LangChain: DirectoryLoader + UnstructuredFileLoader (PyPDFLoader for PDFs:
   unstructured's PDF module needs unstructured-inference, not installed) +
   RecursiveCharacterTextSplitter + QdrantVectorStore.from_documents on a local path.

Usage: python bench/ingest_throughput.py [--articles 24] [--debian 40] [--out results.json]
The machine is shared: note `uptime` next to the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "retrieval" / "squad-dev" / "corpus.jsonl"
RENDERERS = ("md", "html", "docx", "pdf")


def build_corpus(root: Path, articles: int, debian: int) -> dict[str, int]:
    """Render SQuAD articles to four formats and copy Debian text docs; returns counts."""
    import samples

    by_title: OrderedDict[str, list[str]] = OrderedDict()
    with SQUAD.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            by_title.setdefault(row["title"], []).append(row["text"])
    counts = {k: 0 for k in (*RENDERERS, "txt")}
    root.mkdir(parents=True, exist_ok=True)
    for n, (title, paras) in enumerate(list(by_title.items())[:articles]):
        sections = [(f"Part {i // 3 + 1}", paras[i : i + 3]) for i in range(0, len(paras), 3)]
        kind = RENDERERS[n % len(RENDERERS)]
        stem = root / f"squad-{n:03d}"
        if kind == "md":
            stem.with_suffix(".md").write_text(samples.markdown(title, sections), encoding="utf-8")
        elif kind == "html":
            stem.with_suffix(".html").write_text(samples.html_page(title, sections), encoding="utf-8")
        elif kind == "docx":
            samples.write_docx(stem.with_suffix(".docx"), title, sections)
        else:
            samples.write_pdf(stem.with_suffix(".pdf"), title, sections)
        counts[kind] += 1
    docs = sorted(p for p in Path("/usr/share/doc").glob("*/copyright") if p.is_file() and p.stat().st_size > 2000)
    for path in docs[:debian]:
        shutil.copyfile(path, root / f"debian-{path.parent.name}.txt")
        counts["txt"] += 1
    return counts


def run_zhiku(corpus: Path, data: Path, workers: int) -> dict[str, float]:
    from zhiku.engine.identity import indexed_text
    from zhiku.engine.kb import KnowledgeBase
    from zhiku.ingest.pipeline import IngestOptions, ingest_paths

    out: dict[str, float] = {}
    with KnowledgeBase(data, collection="bench") as kb:
        kb.embedder.warm_up()
        kb.embedder.embed_documents(["warm up the kernels"])
        options = IngestOptions(workers=workers, optimize=False)
        first = ingest_paths(kb, [corpus], options)
        t0 = time.perf_counter()
        kb.optimize()
        out["optimize_s"] = time.perf_counter() - t0
        out.update(
            files=first.new, failed=first.failed, chunks=first.chunks_embedded,
            pipeline_s=first.seconds, pipeline_chunks_per_s=first.chunks_per_s,
            pipeline_embed_s=first.embed_seconds,
        )
        chunks = sorted(
            (p for _, p in kb.store.scroll(kb.collection, (), 1024)), key=lambda p: p["chunk_id"]
        )
        from zhiku.engine.types import Chunk

        texts = [indexed_text(Chunk(p["doc_id"], p["chunk_id"], p["chunk_index"], p["text"], p["content_hash"],
                                    p["chunk_count"], p["title"])) for p in chunks]
        # The raw embedder as a caller would use it: every text in one call, in
        # document order (it batches; sentence-transformers sorts each batch).
        t0 = time.perf_counter()
        kb.embedder.embed_documents(texts)
        raw_s = time.perf_counter() - t0
        out.update(raw_s=raw_s, raw_chunks_per_s=len(texts) / raw_s)
        # And at its very best: globally sorted by length, so no batch pays for padding.
        t0 = time.perf_counter()
        kb.embedder.embed_documents(sorted(texts, key=len))
        out["raw_sorted_chunks_per_s"] = len(texts) / (time.perf_counter() - t0)
        second = ingest_paths(kb, [corpus], options)
        out.update(second_s=second.seconds, second_embedded=second.chunks_embedded,
                   second_unchanged=second.unchanged)
    out["pipeline_vs_raw"] = out["pipeline_chunks_per_s"] / out["raw_chunks_per_s"]
    out["pipeline_vs_raw_sorted"] = out["pipeline_chunks_per_s"] / out["raw_sorted_chunks_per_s"]
    out["second_vs_first"] = out["second_s"] / out["pipeline_s"]
    return out


class _LCEmbeddings:
    """LangChain Embeddings over the same MiniLM model (same threads, same batches)."""

    def __init__(self, embedder) -> None:  # type: ignore[no-untyped-def]
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text).tolist()


def run_langchain(corpus: Path, data: Path) -> dict[str, float]:
    import warnings

    warnings.filterwarnings("ignore")
    from langchain_community.document_loaders import DirectoryLoader, PyPDFLoader, UnstructuredFileLoader
    from langchain_core.embeddings import Embeddings
    from langchain_qdrant import QdrantVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from zhiku.engine.embedders import build_embedder
    from zhiku.engine.settings import load_settings
    from zhiku.ingest import offline

    offline.prepare()  # same offline unstructured for both sides
    embedder = build_embedder(load_settings().embed)
    embedder.warm_up()
    embedder.embed_documents(["warm up the kernels"])
    embeddings = type("MiniLM", (_LCEmbeddings, Embeddings), {})(embedder)
    t0 = time.perf_counter()
    docs = DirectoryLoader(str(corpus), glob="**/*", exclude=["**/*.pdf"], loader_cls=UnstructuredFileLoader,
                           silent_errors=True).load()
    docs += DirectoryLoader(str(corpus), glob="**/*.pdf", loader_cls=PyPDFLoader, silent_errors=True).load()
    t_load = time.perf_counter() - t0
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
    QdrantVectorStore.from_documents(chunks, embeddings, path=str(data), collection_name="bench")
    total = time.perf_counter() - t0
    files = len({d.metadata.get("source") for d in docs})
    return {"files": files, "chunks": len(chunks), "load_s": t_load, "total_s": total,
            "chunks_per_s": len(chunks) / total, "files_per_s": files / total}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=24)
    parser.add_argument("--debian", type=int, default=40)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--skip-langchain", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not SQUAD.exists():
        print(f"missing {SQUAD}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="zhiku-bench-") as tmp:
        corpus = Path(tmp) / "corpus"
        result: dict[str, object] = {"corpus": build_corpus(corpus, args.articles, args.debian)}
        result["load_before"] = os.getloadavg()
        result["zhiku"] = run_zhiku(corpus, Path(tmp) / "zhiku-data", args.workers)
        if not args.skip_langchain:
            result["langchain"] = lc = run_langchain(corpus, Path(tmp) / "lc-data")
            z = result["zhiku"]
            assert isinstance(z, dict)
            result["zhiku_vs_langchain_chunks_per_s"] = z["pipeline_chunks_per_s"] / lc["chunks_per_s"]
            result["zhiku_vs_langchain_files_per_s"] = (z["files"] / z["pipeline_s"]) / lc["files_per_s"]
        result["load_after"] = os.getloadavg()
    text = json.dumps(result, indent=2, default=float)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
