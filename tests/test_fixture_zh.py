"""The Chinese retrieval fixture (tests/fixtures/zh) is well formed and retrievable.

It is a small BEIR-format set written for zhiku: 48 paragraphs on ten topics,
with pairs on neighbouring topics as distractors, 48 Chinese and 5 mixed
Chinese/English questions, each answered by exactly one paragraph.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

ZH = Path(__file__).resolve().parent / "fixtures" / "zh"
_HAN = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


def _jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in (ZH / name).read_text(encoding="utf-8").splitlines() if line]


def _qrels() -> list[tuple[str, str, int]]:
    lines = (ZH / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "query-id\tcorpus-id\tscore"
    return [(q, c, int(s)) for q, c, s in (line.split("\t") for line in lines[1:])]


def test_corpus_shape() -> None:
    corpus = _jsonl("corpus.jsonl")
    assert len(corpus) >= 40
    assert len({d["_id"] for d in corpus}) == len(corpus)
    for doc in corpus:
        assert set(doc) == {"_id", "title", "text"}
        assert 80 <= len(doc["text"]) <= 250, doc["_id"]
        assert len(_HAN.findall(doc["text"])) > 0.6 * len(doc["text"]), doc["_id"]


def test_queries_and_qrels_agree() -> None:
    corpus_ids = {d["_id"] for d in _jsonl("corpus.jsonl")}
    queries = _jsonl("queries.jsonl")
    qrels = _qrels()
    per_query = Counter(q for q, _, _ in qrels)
    assert {q["_id"] for q in queries} == set(per_query)
    assert all(n == 1 for n in per_query.values()), "each question has exactly one answer"
    assert all(c in corpus_ids and s > 0 for _, c, s in qrels)
    assert sum(1 for q in queries if not _LATIN.search(q["text"])) >= 40
    mixed = [q for q in queries if _LATIN.search(q["text"]) and _HAN.search(q["text"])]
    assert len(mixed) >= 5


def test_questions_do_not_copy_sentences() -> None:
    """No question repeats a 12-character run of its paragraph verbatim."""
    text = {d["_id"]: d["text"] for d in _jsonl("corpus.jsonl")}
    answer = {q: c for q, c, _ in _qrels()}
    for query in _jsonl("queries.jsonl"):
        q, passage = query["text"], text[answer[query["_id"]]]
        runs = {q[i : i + 12] for i in range(max(0, len(q) - 11))}
        assert not any(run in passage for run in runs), query["_id"]


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_right_paragraph_in_top3(tmp_path: Path, mode: str) -> None:
    from zhiku.engine.kb import KnowledgeBase

    corpus = _jsonl("corpus.jsonl")
    answer = {q: c for q, c, _ in _qrels()}
    queries = _jsonl("queries.jsonl")
    with KnowledgeBase(tmp_path, embed__backend="fake") as kb:
        kb.add_texts(
            [d["text"] for d in corpus],
            ids=[d["_id"] for d in corpus],
            metadatas=[{"title": d["title"]} for d in corpus],
        )
        found = [
            answer[q["_id"]] in [h.doc_id for h in kb.search(q["text"], top_k=3, mode=mode)]
            for q in queries
        ]
    assert sum(found) / len(found) >= 0.9, [q["_id"] for q, ok in zip(queries, found) if not ok]
