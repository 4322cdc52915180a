"""summarize, extract, classify, rewrite and generate on the scripted generator."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from zhiku.engine.errors import InvalidRequest
from zhiku.engine.llm.classify import match_labels, softmax
from zhiku.engine.llm.extract import parse_json
from zhiku.engine.llm.fake import ScriptedGenerator
from zhiku.engine.llm.abilities import LLMService
from zhiku.engine.types import Hit


def svc(script=None, **kwargs):
    return LLMService(ScriptedGenerator(script, **kwargs))


# -- summarize -----------------------------------------------------------------------


def test_summarize_short_text_is_one_call():
    s = svc(["A short summary."])
    assert s.summarize("Some text to summarize.") == "A short summary."
    (messages, _), = s.generator.calls
    assert "Some text to summarize." in messages[-1]["content"]
    assert "two or three sentences" in messages[0]["content"]


def test_summarize_map_reduces_beyond_the_window():
    s = svc(lambda m: "partial" if "Partial summaries" not in m[-1]["content"] else "final", context_window=400)
    long_text = "\n\n".join(f"Paragraph {i} " + "word " * 60 for i in range(12))
    assert s.summarize(long_text) == "final"
    maps = [c for c in s.generator.calls if "Summarize this text" in c[0][-1]["content"]]
    reduces = [c for c in s.generator.calls if "Partial summaries" in c[0][-1]["content"]]
    assert len(maps) >= 3 and len(reduces) == 1
    assert all(s.generator.count_tokens(c[0][-1]["content"]) < 400 for c in maps)


def test_summarize_chinese_uses_chinese_prompt_and_rejects_nothing():
    s = svc(["摘要。"])
    assert s.summarize(["第一篇文档的内容。", "第二篇。"], length="medium") == "摘要。"
    assert "一段话" in s.generator.calls[0][0][0]["content"]
    with pytest.raises(InvalidRequest):
        s.summarize(["", "  "])
    with pytest.raises(InvalidRequest):
        s.summarize("text", length="epic")


def test_summary_inputs_from_documents_and_search():
    class Doc:
        text = "doc text"

    s = LLMService(
        ScriptedGenerator(),
        retriever=lambda q, top_k=10, filters=None: [Hit("d", "c", "hit text", 1.0)],
        get_document=lambda doc_id: Doc,
    )
    assert s.summary_inputs(["d1"], "query") == ["doc text", "hit text"]
    s.generator._script = ["sum"]
    assert s.summarize(doc_ids=["d1"], query="q") == "sum"
    assert "doc text\n\nhit text" in s.generator.calls[-1][0][-1]["content"]


# -- extract -------------------------------------------------------------------------

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


class Person(BaseModel):
    name: str
    age: int


@pytest.mark.parametrize(
    ("reply", "value"),
    [('{"a": 1}', {"a": 1}), ('```json\n{"a": [1, 2]}\n```', {"a": [1, 2]}), ('Sure! {"a": "}"} done', {"a": "}"}), ("[1, 2]", [1, 2])],
)
def test_parse_json_finds_the_first_value(reply, value):
    assert parse_json(reply) == value


def test_extract_valid_first_time_and_asks_for_constrained_json():
    s = svc(['{"name": "Ada", "age": 36}'])
    result = s.extract("Ada Lovelace died at 36.", PERSON)
    assert result.valid and result.attempts == 1 and result.data == {"name": "Ada", "age": 36}
    assert s.generator.calls[0][1].json_schema == PERSON


def test_extract_retries_with_the_validation_error():
    s = svc(['{"name": "Ada", "age": "thirty-six"}', '{"name": "Ada", "age": 36}'])
    result = s.extract("Ada Lovelace died at 36.", PERSON)
    assert result.valid and result.attempts == 2 and len(result.errors) == 1
    retry_prompt = s.generator.calls[1][0][-1]["content"]
    assert "age" in retry_prompt and "thirty-six" in retry_prompt and "not valid" in retry_prompt
    assert [c[1].constrain for c in s.generator.calls] == [False, False]  # 2 of 3 tries used


def test_extract_gives_up_after_the_retries():
    s = svc(["not json", "still not", "nope"])
    result = s.extract("text", PERSON, retries=2)
    assert not result.valid and result.attempts == 3 and len(result.errors) == 3 and result.data is None
    assert [c[1].constrain for c in s.generator.calls] == [False, False, True]


def test_extract_to_a_pydantic_model():
    s = svc(['{"name": "Ada"}', '{"name": "Ada", "age": 36}'])
    result = s.extract("Ada, 36", Person)
    assert result.valid and result.data == Person(name="Ada", age=36)


def test_extract_rejects_bad_schemas_and_empty_text():
    with pytest.raises(InvalidRequest):
        svc().extract("text", {"type": "no-such-type"})
    with pytest.raises(InvalidRequest):
        svc().extract("text", "not a schema")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        svc().extract(" ", PERSON)


# -- classify ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "multi", "labels", "clean"),
    [
        ("sports", False, ["sports"], 1.0),
        ("Sports.", False, ["sports"], 1.0),
        ("The label is: politics", False, ["politics"], 0.6),
        ("sports, politics", True, ["sports", "politics"], 1.0),
        ("sprots", False, ["sports"], 0.3),
        ("not spam", False, ["not spam"], 1.0),
        ("I think it is not spam here", False, ["not spam"], 0.6),
    ],
)
def test_match_labels(reply, multi, labels, clean):
    assert match_labels(reply, ["sports", "politics", "tech", "spam", "not spam"], multi) == (labels, clean)


def test_classify_by_generation_with_descriptions_and_examples():
    s = svc(["tech"])
    result = s.classify(
        "New GPU released",
        {"sports": "games and athletes", "tech": "computers"},
        examples=[("Team wins cup", "sports")],
    )
    assert result.label == "tech" and result.confidence == 1.0
    prompt = s.generator.calls[0][0]
    assert "- tech: computers" in prompt[0]["content"]
    assert "Text: Team wins cup\nLabel: sports" in prompt[-1]["content"]


def test_classify_uses_model_probabilities_when_the_backend_scores_choices():
    def scorer(messages, choices):
        if "N/A" in messages[-1]["content"]:
            return [-1.0, -1.0]  # no bias: calibration changes nothing
        return [-3.0 if c == "sports" else -0.1 for c in choices]

    s = svc([], scorer=scorer)  # no generation needed for single-label
    result = s.classify("New GPU released", ["sports", "tech"])
    assert result.label == "tech"
    assert result.confidence == pytest.approx(softmax([-3.0, -0.1])[1])
    assert sum(result.scores.values()) == pytest.approx(1.0)


def test_classify_calibration_removes_a_label_bias_and_caches_the_prior():
    calls = []

    def scorer(messages, choices):
        calls.append(messages[-1]["content"])
        if "N/A" in messages[-1]["content"]:
            return [-0.1, -3.0]  # the model likes "sports" whatever the text
        return [-0.5, -1.5]  # raw: sports wins

    s = svc([], scorer=scorer)
    assert s.classify("New GPU released", ["sports", "tech"]).label == "tech"
    s.classify("Another text", ["sports", "tech"])
    assert sum("N/A" in c for c in calls) == 1


def test_classify_multi_label_and_bad_input():
    s = svc(["sports, tech"])
    assert s.classify("Esports on GPUs", ["sports", "tech", "food"], multi_label=True).labels == ["sports", "tech"]
    with pytest.raises(InvalidRequest):
        s.classify("x", ["only"])
    with pytest.raises(InvalidRequest):
        s.classify("", ["a", "b"])


# -- rewrite and generate ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "style", "target", "needle"),
    [
        ("teh cat", "correct", None, "spelling"),
        ("这个句子写的不好", "polish", None, "润色"),
        ("Hello", "translate", "zh", "Chinese"),
        ("你好", "translate", "en", "英文"),
        ("Complex prose", "simplify", None, "simpler"),
    ],
)
def test_rewrite_styles_pick_instructions_in_the_text_language(text, style, target, needle):
    s = svc(["out"])
    assert s.rewrite(text, style, target) == "out"
    assert needle in s.generator.calls[0][0][0]["content"]


def test_rewrite_rejects_unknown_styles_and_missing_target():
    with pytest.raises(InvalidRequest):
        svc().rewrite("x", "shout")
    with pytest.raises(InvalidRequest):
        svc().rewrite("x", "translate")


def test_generate_free_and_grounded():
    s = LLMService(
        ScriptedGenerator(["free", "grounded [1]"]),
        retriever=lambda q, top_k=10, filters=None: [Hit("d", "c", "Qdrant stores vectors.", 1.0, title="Qdrant")],
    )
    assert s.generate("Write a haiku") == "free"
    assert "Sources" not in s.generator.calls[0][0][0]["content"]
    assert s.generate("What does Qdrant do?", grounded=True) == "grounded [1]"
    assert "[1] Qdrant\nQdrant stores vectors." in s.generator.calls[1][0][0]["content"]
    assert list(svc(["a b"]).generate_stream("go")) == ["a", " b"]
