"""KnowledgeBase behaviour on both stores, with the deterministic fake embedder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from zhiku.engine.errors import InvalidRequest, ManifestMismatch, NotFound, StoreLocked
from zhiku import KnowledgeBase

DOCS = {
    "fox": "The quick brown fox jumps over the lazy dog near the river bank.",
    "cat": "Cats sleep most of the day and hunt mice at night.",
    "bj": "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "sh": "上海是中国最大的经济中心城市，位于长江入海口。",
    "py": "Python is a programming language that emphasises readable code.",
}
META = {"fox": {"lang": "en", "year": 2001}, "cat": {"lang": "en", "year": 2010},
        "bj": {"lang": "zh", "year": 2015}, "sh": {"lang": "zh", "year": 2020}, "py": {"lang": "en", "year": 1991}}


@pytest.fixture(params=["edge", "server"])
def kb(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    store = {"backend": request.param}
    if request.param == "server":
        store["url"] = ":memory:"
    with KnowledgeBase(tmp_path, "t", embed__backend="fake", store=store) as kb:
        kb.add_texts(list(DOCS.values()), ids=list(DOCS), metadatas=[META[k] for k in DOCS])
        yield kb


def top(kb: KnowledgeBase, query: str, **kw) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.doc_id for h in kb.search(query, **kw)]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_each_mode_finds_the_matching_document(kb: KnowledgeBase, mode: str) -> None:
    assert top(kb, "quick brown fox", mode=mode)[0] == "fox"
    assert top(kb, "首都和文化中心在哪里", mode=mode)[0] == "bj"


@pytest.mark.parametrize("fusion", ["convex", "rrf", "dbsf"])
def test_each_fusion_works(kb: KnowledgeBase, fusion: str) -> None:
    hits = kb.search("cats hunt mice", fusion=fusion, top_k=3)
    assert hits[0].doc_id == "cat" and len(hits) == 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hit_fields(kb: KnowledgeBase) -> None:
    hit = kb.search("python readable code", top_k=1)[0]
    assert (hit.doc_id, hit.chunk_index) == ("py", 0)
    assert hit.chunk_id.startswith("py#") and "readable" in hit.text
    assert hit.metadata == {"lang": "en", "year": 1991}


def test_filters_equality_any_of_range(kb: KnowledgeBase) -> None:
    assert set(top(kb, "city", filters={"lang": "zh"})) == {"bj", "sh"}
    assert set(top(kb, "city", filters={"year": [2001, 2020]})) == {"fox", "sh"}
    assert set(top(kb, "city", filters={"year": {"gte": 2010, "lt": 2020}})) == {"cat", "bj"}
    assert top(kb, "fox", filters={"lang": "xx"}) == []


def test_readding_an_id_replaces_the_document(kb: KnowledgeBase) -> None:
    kb.add_texts(["Foxes are omnivores living in forests."], ids=["fox"])
    doc = kb.get_document("fox")
    assert doc.text == "Foxes are omnivores living in forests." and doc.metadata == {}
    assert kb.count() == len(DOCS)


def test_unchanged_documents_are_not_reembedded(kb: KnowledgeBase) -> None:
    calls = kb.embedder.calls  # type: ignore[attr-defined]
    kb.add_texts([DOCS["fox"]], ids=["fox"], metadatas=[META["fox"]])
    assert kb.embedder.calls == calls  # type: ignore[attr-defined]


def test_long_text_is_chunked_and_reassembled(kb: KnowledgeBase) -> None:
    sentences = [f"Sentence number {i} talks about topic {i % 7}." for i in range(400)]
    kb.add_texts([" ".join(sentences)], ids=["long"], metadatas=[{"title": "Long"}])
    doc = kb.get_document("long")
    assert len(doc.chunks) > 5
    assert [c.chunk_index for c in doc.chunks] == list(range(len(doc.chunks)))
    assert all(c.title == "Long" for c in doc.chunks)
    assert "Sentence number 399" in doc.text
    assert any(d["doc_id"] == "long" and d["chunk_count"] == len(doc.chunks) for d in kb.list_documents())


def test_delete_list_and_counts(kb: KnowledgeBase) -> None:
    assert kb.count_documents() == 5 and [d["doc_id"] for d in kb.list_documents(limit=2)] == ["bj", "cat"]
    kb.delete(["fox", "cat", "missing"])
    assert kb.count() == 3 and "fox" not in top(kb, "fox")
    with pytest.raises(NotFound):
        kb.get_document("fox")


def test_generated_ids_are_content_hashes(kb: KnowledgeBase) -> None:
    first = kb.add_texts(["same text"])
    assert kb.add_texts(["same text"]) == first and first[0].startswith("doc-")


@pytest.mark.parametrize(
    "kwargs",
    [{"query": ""}, {"query": "x", "top_k": 0}, {"query": "x", "top_k": 10_000}, {"query": "x", "mode": "magic"},
     {"query": "x", "fusion": "avg"}, {"query": "x", "alpha": 1.5}, {"query": "x", "filters": {"a": {"near": 1}}}],
)
def test_bad_requests_are_clear_errors(kb: KnowledgeBase, kwargs: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidRequest):
        kb.search(**kwargs)


def test_reopen_gives_identical_results(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path, "t", embed__backend="fake") as kb:
        kb.add_texts(list(DOCS.values()), ids=list(DOCS))
        kb.optimize()
        before = [(h.doc_id, h.score) for q in ("fox river", "首都", "code") for h in kb.search(q)]
    with KnowledgeBase(tmp_path, "t", embed__backend="fake") as kb:
        after = [(h.doc_id, h.score) for q in ("fox river", "首都", "code") for h in kb.search(q)]
    assert after == before


def test_other_embedding_model_is_refused(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path, "t", embed__backend="fake") as kb:
        kb.add_texts(["hello"])
    with pytest.raises(ManifestMismatch, match="fake-hash-32"):
        KnowledgeBase(tmp_path, "t", embed__backend="fake", embed__fake_dim=16)


def test_second_process_gets_in_use_error(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path, "t", embed__backend="fake") as kb:
        kb.add_texts(["hello"])
        code = (
            "from zhiku.engine.kb import KnowledgeBase\n"
            "from zhiku.engine.errors import StoreLocked\n"
            "try:\n"
            f"    KnowledgeBase({str(tmp_path)!r}, 't', embed__backend='fake')\n"
            "except StoreLocked as e:\n"
            "    print('LOCKED', e)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert "LOCKED" in out.stdout and "in use by another process" in out.stdout, out.stderr
    assert StoreLocked.code == "store_locked"


def test_add_files_ingests_a_folder_incrementally(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nThe alpha document talks about foxes.")
    (docs / "b.txt").write_text("北京是中华人民共和国的首都。", encoding="utf-8")
    with KnowledgeBase(tmp_path / "data", "files", embed__backend="fake") as kb:
        kb.add_files(docs, metadata={"team": "x"}, workers=1)
        assert {d["doc_id"] for d in kb.list_documents()} == {"a.md", "b.txt"}
        hit = kb.search("foxes", top_k=1, filters={"team": "x"})[0]
        assert hit.doc_id == "a.md"
        calls = kb.embedder.calls  # type: ignore[attr-defined]
        kb.add_files(docs, metadata={"team": "x"}, workers=1)
        assert kb.embedder.calls == calls  # unchanged files are not re-embedded


def test_llm_abilities_through_the_knowledge_base(tmp_path: Path) -> None:
    import asyncio

    with KnowledgeBase(tmp_path, "t", embed__backend="fake", llm__backend="fake") as kb:
        kb.add_texts(list(DOCS.values()), ids=list(DOCS), metadatas=[META[k] for k in DOCS])
        answer = kb.ask("What do cats hunt at night?")
        assert not answer.refused and answer.citations
        assert answer.citations[0].doc_id == "cat"
        events = list(kb.ask("What do cats hunt at night?", stream=True))
        assert events[0].type == "sources" and events[-1].type == "done"
        assert kb.ask("Who won the 1930 football world cup?").refused
        assert asyncio.run(kb.aask("What do cats hunt at night?")).citations[0].doc_id == "cat"
        assert kb.llm is kb.llm  # one service, one model, per knowledge base


NAME_DOC = "周勇伟以优异成绩毕业于北京大学，后来成为一名工程师。"
OTHER_DOC = "周勇以优异成绩毕业于清华大学，后来成为一名教师。"


def test_an_unknown_chinese_name_in_a_question_matches_the_document(tmp_path: Path) -> None:
    # Tokenizer v1 let jieba guess new words, gluing the unknown name to the next
    # character in the document ("周勇伟以") but not in the question, so BM25
    # found nothing for "周勇伟是谁". New collections use v2 (no guessing).
    with KnowledgeBase(tmp_path, "t", embed__backend="fake") as kb:
        kb.add_texts([NAME_DOC, OTHER_DOC], ids=["zyw", "zy"])
        assert top(kb, "周勇伟是谁", mode="bm25")[0] == "zyw"
        assert kb.manifest.tokenizer == "zhiku-bm25-v2"


def test_a_collection_keeps_the_tokenizer_it_was_built_with(tmp_path: Path) -> None:
    from zhiku.engine.check import check_collection

    with KnowledgeBase(tmp_path, "t", embed__backend="fake") as kb:
        raw = kb.manifest.to_dict()
        kb.store.write_manifest(kb.collection, {**raw, "tokenizer": "zhiku-bm25-v1"})
    with KnowledgeBase(tmp_path, "t", embed__backend="fake") as kb:
        assert kb.manifest.tokenizer == "zhiku-bm25-v1"
        kb.add_texts([NAME_DOC, OTHER_DOC], ids=["zyw", "zy"])
        # Written and searched with v1's terms, so old collections rank as before.
        assert top(kb, "周勇伟以", mode="bm25") == ["zyw"]
        assert top(kb, "周勇伟是谁", mode="bm25") == []
        assert check_collection(kb.store, kb.collection, kb.settings).problems == []
        kb.store.write_manifest(kb.collection, {**raw, "tokenizer": "zhiku-bm25-v9"})
    with pytest.raises(ManifestMismatch, match="zhiku-bm25-v9"):
        KnowledgeBase(tmp_path, "t", embed__backend="fake")
