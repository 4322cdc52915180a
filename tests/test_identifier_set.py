"""The generated identifier set is fair: each query's value is held by its one relevant document only."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import identifier_set  # noqa: E402

from zhiku.engine.query import holds_all, normalise  # noqa: E402


def test_every_value_is_held_by_its_relevant_document_alone() -> None:
    corpus, queries, qrels = identifier_set.generate(groups=60)
    relevant = dict(qrels)
    kinds = {q["kind"] for q in queries}
    assert kinds == set(identifier_set.TEMPLATES)
    for query in queries:
        # The value is the query with its template's words removed.
        template = identifier_set.TEMPLATES[query["kind"]][2 if query["lang"] == "zh" else 0]
        prefix, suffix = template.split("{v}")
        value = normalise(query["text"][len(prefix) : len(query["text"]) - len(suffix)])
        holders = [d["_id"] for d in corpus if holds_all(d["text"], (value,))]
        assert holders == [relevant[query["_id"]]], query
