"""The committed extract / classify fixtures are well formed (so the benches mean something)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "llm"


def test_extract_fixture_has_50_valid_schemas_with_known_fields():
    jsonschema = pytest.importorskip("jsonschema")
    cases = [json.loads(l) for l in (FIXTURES / "extract_cases.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(cases) == 50
    for case in cases:
        jsonschema.Draft202012Validator.check_schema(case["schema"])
        assert case["text"].strip()
        assert set(case["expected"]) <= set(case["schema"]["properties"])
        for key, value in case["expected"].items():
            jsonschema.validate(value, case["schema"]["properties"][key])


def test_classify_fixture_has_at_least_100_items_over_the_labels():
    labels = json.loads((FIXTURES / "classify_labels.json").read_text(encoding="utf-8"))
    items = [json.loads(l) for l in (FIXTURES / "classify_topics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(items) >= 100
    counts = Counter(i["label"] for i in items)
    assert set(counts) == set(labels) and min(counts.values()) >= 15
    assert len({i["text"] for i in items}) == len(items)
