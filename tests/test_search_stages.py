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
    "long": "Records office annual report. Many files were digitised this year and moved to the new "
            "building, where staff catalogued boxes of letters, ledgers, maps, photographs and minutes of "
            "meetings held by the harbour board, the school board and the water company over ninety years. "
            "Among them, archive code QX000ZR marks the harbour survey of 1931, kept in the map room with "
            "the tide tables, the dredging plans and the pilots' logbooks of the same decade.",
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


# Dense-only search is semantic by request: the guarantee needs the BM25 leg's candidates.
@pytest.mark.parametrize("mode", ["hybrid", "bm25"])
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
    kb.embedder.cross_lingual = True  # type: ignore[misc]  # the fake stands in for a multilingual model
    hits = kb.search("hybrid search dense BM25 legs fuse", top_k=3)
    assert "zh" in [h.doc_id for h in hits[:2]]
    kb.settings.retrieval.cross_lingual = False
    kb.searcher._languages.clear()
    assert "zh" not in [h.doc_id for h in kb.search("hybrid search dense BM25 legs fuse", top_k=3)]


def test_no_pool_when_the_other_language_is_a_stray_share(kb: KnowledgeBase) -> None:
    """1 Chinese chunk of 7: a pool at min share 0.1, none at 0.2 (no cost, no forced slot)."""
    kb.embedder.cross_lingual = True  # type: ignore[misc]
    question = "hybrid search dense BM25 legs fuse"
    kb.settings.retrieval.cross_lingual_min_share = 0.2
    _, timings = kb.search_debug(question, top_k=3)
    assert "cross_ms" not in timings
    assert "zh" not in [h.doc_id for h in kb.search(question, top_k=3)]
    kb.settings.retrieval.cross_lingual_min_share = 0.1
    assert "zh" in [h.doc_id for h in kb.search(question, top_k=3)]


def test_bilingual_collections_store_two_halves_and_rank_as_one_vector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each question searches only the half it meets, with the scores the whole vector gives."""
    from zhiku.engine import embedders

    monkeypatch.setitem(embedders.EMBEDDERS, "fake", lambda s: BilingualEmbedder(FakeEmbedder(8), FakeEmbedder(6)))
    questions = ["archive code of this record", "hybrid search legs", "混合检索"]

    def ranked(root: Path) -> tuple[tuple[int, ...], list[list[tuple[str, float]]]]:
        with KnowledgeBase(root, "t", embed__backend="fake") as kb:
            kb.add_texts(list(DOCS.values()), ids=list(DOCS))
            return kb.store.dense_parts(kb.collection), [
                [(h.doc_id, round(h.score, 5)) for h in kb.search(q, top_k=5, mode=mode)]
                for q in questions for mode in ("dense", "hybrid")
            ]

    parts, split = ranked(tmp_path / "parts")
    monkeypatch.setattr(BilingualEmbedder, "dense_parts", property(lambda self: ()))
    whole_parts, whole = ranked(tmp_path / "whole")
    assert parts == (8, 6) and whole_parts == ()
    assert split == whole


def test_an_english_only_embedder_gets_no_pool_from_the_other_language(kb: KnowledgeBase) -> None:
    """Its nearest Chinese chunks are noise: no slot in the top 3 is forced for them."""
    assert not kb.embedder.cross_lingual
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


@pytest.mark.integration
def test_cross_encoder_stage_with_a_tiny_random_model(kb: KnowledgeBase, tmp_path: Path) -> None:
    """No cross-encoder weights exist offline: a 2-layer random BERT checks the wiring."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    from zhiku.engine.llm.rerank import build_reranker

    folder = tmp_path / "tiny-ce"
    folder.mkdir()
    words = sorted({w for t in DOCS.values() for w in t.lower().replace(".", " ").split()})
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    config = BertConfig(vocab_size=5 + len(words), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)
    reranker = build_reranker("cross-encoder", folder)
    assert reranker is not None
    kb.settings.retrieval.cross_lingual = False
    kb.searcher.reranker = reranker
    hits, timings = kb.search_debug("hybrid search legs", top_k=4)
    expected = reranker.score("hybrid search legs", [h.text for h in hits])
    assert [h.score for h in hits] == pytest.approx(sorted(expected, reverse=True), abs=1e-5)
    assert timings["rerank_ms"] > 0
    # The exact-match guarantee still holds after a random reranker.
    assert kb.search("archive code QX000ZR", top_k=3)[0].doc_id == "long"



NAMES = {
    # The one document naming Lucian Ferreira is long; short look-alikes share
    # one of the two names and the wording of the question.
    "target": "Records office annual report. Staff catalogued boxes of letters, ledgers, maps and "
              "photographs of the harbour board over ninety years, and the reading room reopened in "
              "spring. Lucian Ferreira joined the records office as a senior archivist that year, "
              "after a decade at the harbour board, and now keeps the survey maps of the old port.",
    "near1": "Ingrid Ferreira joined the records office as a senior archivist.",
    "near2": "Lucian Halvorsen joined the records office as a senior archivist.",
    "near3": "Marta Ferreira joined the records office as a senior archivist.",
    "zh_target": "较早的材料存放在馆外，调取可能需要一周时间。赵国芳以高级档案员的身份加入了档案室。会议纪要已在官方公报上发布。",
    "zh_near": "赵国伟以高级档案员的身份加入了档案室。",
}


@pytest.fixture
def names_kb(tmp_path: Path):  # type: ignore[no-untyped-def]
    with KnowledgeBase(tmp_path, "names", embed__backend="fake") as kb:
        kb.add_texts(list(NAMES.values()), ids=list(NAMES))
        yield kb


@pytest.mark.parametrize(
    "query, expected", [("who is Lucian Ferreira", "target"), ("Lucian Ferreira", "target"), ("赵国芳是谁", "zh_target")]
)
# alpha 1.0: the dense leg alone orders the fusion, and (fake) dense prefers a look-alike.
@pytest.mark.parametrize("options", [{"mode": "hybrid"}, {"mode": "bm25"}, {"mode": "hybrid", "alpha": 1.0}])
def test_the_one_document_holding_the_full_name_ranks_first(names_kb: KnowledgeBase, query: str, expected: str,
                                                            options: dict) -> None:
    assert names_kb.search(query, top_k=3, **options)[0].doc_id == expected


def test_a_name_two_documents_hold_promotes_nothing(names_kb: KnowledgeBase) -> None:
    # "Ferreira joined" is in three documents: the ranking is the fused one.
    plain = names_kb.search("Ferreira joined the records office", top_k=5, alpha=0.4)
    assert [h.doc_id for h in names_kb.search("Ferreira Joined the records office", top_k=5, alpha=0.4)] == [
        h.doc_id for h in plain
    ]


def test_identifier_queries_read_only_the_chunks_that_can_hold_them(kb: KnowledgeBase) -> None:
    reads: list[tuple[str, object]] = []
    store = kb.store
    for name in ("query_dense", "query_sparse", "retrieve"):
        original = getattr(store, name)

        def spy(*args, _original=original, _name=name, **kwargs):  # type: ignore[no-untyped-def]
            out = _original(*args, **kwargs)
            if _name == "retrieve":
                reads.append((_name, len(args[1])))
            else:
                reads.append((_name, args[4] if len(args) > 4 else kwargs.get("with_payload", True)))
            return out

        setattr(store, name, spy)
    # alpha 1.0: dense decides the fusion, so the holder is not on top and the probe runs.
    assert kb.search("archive code QX000ZR", top_k=2, alpha=1.0)[0].doc_id == "long"
    # Neither leg reads payloads; the BM25 leg and the probe run without them;
    # the two hits returned and the probe's one hit (the chunk holding the
    # code) are read, nothing else.
    assert ("query_dense", False) in reads and reads.count(("query_sparse", False)) == 2
    assert not any(flag is True for _, flag in reads)
    assert sum(n for name, n in reads if name == "retrieve") <= 3


def test_bilingual_similarity_is_the_search_score_from_one_half_only() -> None:
    en, ml = FakeEmbedder(dim=8), FakeEmbedder(dim=6)
    bi = BilingualEmbedder(en, ml)
    texts = ["hello world", "你好世界", "goodbye"]
    for question in ("hello there", "你好"):
        assert np.allclose(bi.similarity(question, texts), bi.embed_documents(texts) @ bi.embed_query(question),
                           atol=1e-6)
