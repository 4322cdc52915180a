"""The shipped sample corpus (deploy/sample-corpus, used by `make run`) ingests cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhiku.engine.kb import KnowledgeBase
from zhiku.ingest.pipeline import IngestOptions, ingest_paths

SAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "sample-corpus"


def test_sample_corpus_ingests_every_file(tmp_path: Path) -> None:
    files = sorted(p.name for p in SAMPLE.iterdir())
    assert {Path(f).suffix for f in files} >= {".md", ".html", ".txt", ".docx", ".pdf"}
    assert sum(p.stat().st_size for p in SAMPLE.iterdir()) < 200_000
    with KnowledgeBase(tmp_path, collection="sample", embed__backend="fake") as kb:
        summary = ingest_paths(kb, [SAMPLE], IngestOptions(workers=0, optimize=False))
        assert summary.problems == [] and summary.new == len(files)
        languages = {d["doc_id"]: d["metadata"]["language"] for d in kb.list_documents(limit=50)}
        assert languages["运维手册.txt"] == "zh" and languages["getting-started.md"] == "en"
        hits = kb.search("增量同步", mode="bm25", top_k=3)
        assert hits and hits[0].doc_id == "检索增强生成简介.md"
        pdf = kb.get_document("architecture.pdf")
        assert pdf.chunks[0].metadata["page"] == 1 and pdf.title == "zhiku architecture overview"


@pytest.mark.integration
def test_a_chinese_question_finds_the_english_answer_with_the_default_embedder(tmp_path: Path) -> None:
    """Issue 13's case: `zhiku 支持哪些文件格式？` is answered by getting-started.md (English)."""
    with KnowledgeBase(tmp_path, collection="sample") as kb:
        assert kb.embedder.cross_lingual  # the default embedder crosses languages
        ingest_paths(kb, [SAMPLE], IngestOptions(workers=0, optimize=False))
        assert "getting-started.md" in [h.doc_id for h in kb.search("zhiku 支持哪些文件格式？", top_k=3)]
