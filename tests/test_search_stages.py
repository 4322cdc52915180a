"""Searcher stages end to end on the real store with fakes: phrases, identifiers, cross-lingual, reranker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zhiku.engine.embedders.bilingual import HALF, BilingualEmbedder
from zhiku.engine.embedders.fake import FakeEmbedder
from zhiku.engine.kb import KnowledgeBase
from zhiku.engine.llm.rerank import OverlapReranker

DOCS = {
    # The case: short look-alikes that win on dense similarity, and the
    # one long document that holds the exact code.
    "long": "Records office annual report. Many files were digitised this year and moved to the new archive "
            "building, where staff catalogued boxes. Among them, the archive code QX000ZR marks the harbour "
            "survey of 1931, kept in the map room.",
    "near1": "The archive code of this record is QX003ZR.",
    "near2": "The archive code of this record is QX000ZK.",
    "near3": "The archive code of this record is QX000ZRA.",
    "hybrid": "Hybrid search fuses a dense leg and a BM25 leg.",
    "search": "Search that is hybrid in spirit, mixing methods.",
    "zh": "混合检索把向量检索和关键词检索的结果融合在一起。",
}


@pytest.fixture
def kb(tmp_path: Path):  # type: ignore[no-untyped-def]
    with KnowledgeBase(tmp_path, "t", embed__backend="fake") as kb:
        kb.add_texts(list(DOCS.values()), ids=list(DOCS))
        yield kb


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_the_one_document_holding_the_code_ranks_first(kb: KnowledgeBase, mode: str) -> None:
    assert kb.search("archive code QX000ZR", top_k=3, mode=mode)[0].doc_id == "long"


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_every_hit_holds_the_quoted_phrase(kb: KnowledgeBase, mode: str) -> None:
    hits = kb.search('"hybrid search" legs', top_k=10, mode=mode)
    assert [h.doc_id for h in hits] == ["hybrid"]


def test_a_phrase_nobody_holds_finds_nothing(kb: KnowledgeBase) -> None:
    assert kb.search('"no such phrase anywhere"', top_k=5) == []


def test_chunks_record_their_language(kb: KnowledgeBase) -> None:
    payloads = dict(kb.store.retrieve(kb.collection, [pid for pid, _ in kb.store.scroll(kb.collection)]))
    languages = {p["doc_id"]: p["language"] for p in payloads.values()}
    assert languages["zh"] == "zh" and languages["long"] == "en"


def test_a_question_also_finds_the_best_chunk_in_the_other_language(kb: KnowledgeBase) -> None:
    hits = kb.search("hybrid search dense BM25 legs fuse", top_k=3)
    assert "zh" in [h.doc_id for h in hits[:2]]
    kb.settings.retrieval.cross_lingual = False
    kb.searcher._languages.clear()
    assert "zh" not in [h.doc_id for h in kb.search("hybrid search dense BM25 legs fuse", top_k=3)]


def test_reranker_stage_reorders_the_head(kb: KnowledgeBase) -> None:
    class Reverse(OverlapReranker):
        def score(self, query, texts):  # type: ignore[no-untyped-def]
            return [float(len(t)) for t in texts]  # longest first

    kb.settings.retrieval.cross_lingual = False
    kb.searcher.reranker = Reverse()
    hits = kb.search("hybrid search", top_k=3)
    assert [len(h.text) for h in hits] == sorted((len(h.text) for h in hits), reverse=True)
    _, timings = kb.search_debug("hybrid search", top_k=3)
    assert "rerank_ms" in timings


def test_reranker_cannot_undo_the_exact_match(kb: KnowledgeBase) -> None:
    class Shortest(OverlapReranker):
        def score(self, query, texts):  # type: ignore[no-untyped-def]
            return [-float(len(t)) for t in texts]

    kb.searcher.reranker = Shortest()
    assert kb.search("archive code QX000ZR", top_k=3)[0].doc_id == "long"


def test_bilingual_embedder_halves() -> None:
    en, ml = FakeEmbedder(dim=8), FakeEmbedder(dim=6)
    en.relevance_floors = {"en": 0.45}  # type: ignore[assignment]
    bi = BilingualEmbedder(en, ml)
    assert bi.dim == 14 and bi.model_id == "fake-hash-8+fake-hash-6"
    docs = bi.embed_documents(["hello world", "你好世界"])
    assert docs.shape == (2, 14)
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    english = bi.embed_query("hello world")
    assert np.allclose(english[8:], 0) and not np.allclose(english[:8], 0)
    chinese = bi.embed_query("你好世界")
    assert np.allclose(chinese[:8], 0) and not np.allclose(chinese[8:], 0)
    across = bi.embed_query_across("hello world")
    assert np.allclose(across[:8], 0)
    # An English question scores a passage at HALF the English model's cosine.
    expected = float(en.embed_query("hello world") @ en.embed_documents(["hello world"])[0])
    assert float(english @ docs[0]) == pytest.approx(expected * HALF, abs=1e-5)
    assert dict(bi.relevance_floors) == {"en": pytest.approx(0.45 * HALF)}
