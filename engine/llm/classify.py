"""Classification into given labels, with descriptions, few-shot examples, multi-label.

Confidence comes from the model's own probabilities when the backend can score
choices (llamacpp, transformers): a softmax over each label's log-likelihood,
contextually calibrated (Zhao et al., 2021): the label scores for a
content-free text ("N/A") are subtracted, which removes the small models'
bias toward some labels (the first one, typically). Those priors are cached
per label set.
Otherwise the label is parsed from the reply and the confidence says how
cleanly it matched (1.0 exact, 0.6 inside a longer reply, 0.3 a fuzzy guess).
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from langchain_core.output_parsers import StrOutputParser

from zhiku.engine.errors import InvalidRequest
from zhiku.engine.llm.chat_model import GeneratorChatModel, to_messages
from zhiku.engine.llm.templates import Lang, detect_language, load_prompt

Labels = Sequence[str] | Mapping[str, str]  # names, or name -> description
Example = tuple[str, str | Sequence[str]]

_INSTRUCTIONS: dict[tuple[Lang, bool], str] = {
    ("en", False): "Reply with exactly one label from the list and nothing else.",
    ("en", True): "Reply with every label from the list that applies, separated by commas, and nothing else.",
    ("zh", False): "只回答列表中的一个标签，不要输出其他内容。",
    ("zh", True): "回答列表中所有适用的标签，用逗号分隔，不要输出其他内容。",
}
_EXAMPLE = {"en": "Text: {text}\nLabel: {label}\n\n", "zh": "文本：{text}\n标签：{label}\n\n"}


@dataclass(slots=True)
class Classification:
    """The chosen label(s), the confidence in the first, and per-label scores."""

    labels: list[str]
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)
    raw: str = ""

    @property
    def label(self) -> str:
        """The single best label."""
        return self.labels[0]


def softmax(logps: Sequence[float]) -> list[float]:
    """Probabilities from log-scores, numerically stable."""
    top = max(logps)
    exps = [math.exp(x - top) for x in logps]
    total = sum(exps)
    return [e / total for e in exps]


def match_labels(reply: str, names: Sequence[str], multi: bool) -> tuple[list[str], float]:
    """Labels named in a reply, and how cleanly they matched."""
    cleaned = reply.strip().strip("\"'`.。").strip()
    lowered = {n.lower(): n for n in names}
    if cleaned.lower() in lowered:
        return [lowered[cleaned.lower()]], 1.0
    if multi:
        parts = [p.strip().strip("\"'`.。").lower() for p in re.split(r"[,，、;\n]", cleaned)]
        found = [lowered[p] for p in parts if p in lowered]
        if found:
            return list(dict.fromkeys(found)), 1.0
    # Longest names first so "not spam" wins over "spam".
    inside = [n for n in sorted(names, key=len, reverse=True) if re.search(rf"(?<!\w){re.escape(n.lower())}(?!\w)", cleaned.lower())]
    if inside:
        return (inside if multi else inside[:1]), 0.6
    guess = difflib.get_close_matches(cleaned.lower(), list(lowered), n=1, cutoff=0.0)
    return [lowered[guess[0]]] if guess else [names[0]], 0.3


def classify(
    model: GeneratorChatModel,
    text: str,
    labels: Labels,
    examples: Sequence[Example] = (),
    multi_label: bool = False,
    priors: dict[str, list[float]] | None = None,
) -> Classification:
    """Classify `text` into `labels` (see the module docstring for the confidence)."""
    if not text or not text.strip():
        raise InvalidRequest("nothing to classify")
    names = list(labels)
    if len(names) < 2 or len(set(names)) != len(names):
        raise InvalidRequest("classify needs at least two distinct labels")
    lang = detect_language(text)
    described = labels if isinstance(labels, Mapping) else {}
    inputs = {
        "labels": "\n".join(f"- {n}: {described[n]}" if described.get(n) else f"- {n}" for n in names),
        "instruction": _INSTRUCTIONS[(lang, multi_label)],
        "examples": "".join(
            _EXAMPLE[lang].format(text=t, label=l if isinstance(l, str) else ", ".join(l)) for t, l in examples
        ),
        "text": text,
    }
    prompt = load_prompt("classify", lang)
    logps = model.generator.score_choices(to_messages(prompt.format_messages(**inputs)), names)
    if logps:
        prior = _prior(model, prompt, inputs, names, priors)
        logps = [lp - pr for lp, pr in zip(logps, prior)]
    scores = dict(zip(names, softmax(logps))) if logps else {}
    if scores and not multi_label:
        best = max(names, key=lambda n: scores[n])
        return Classification([best], scores[best], scores, "")
    reply = (prompt | model.bind(max_tokens=48) | StrOutputParser()).invoke(inputs)
    chosen, clean = match_labels(reply, names, multi_label)
    confidence = scores[chosen[0]] if scores else clean
    return Classification(chosen, confidence, scores, reply)


def _prior(model, prompt, inputs, names, cache):  # type: ignore[no-untyped-def]
    """Log-probabilities of each label for a content-free text, cached per prompt."""
    empty = {**inputs, "text": "N/A"}
    key = str(sorted(empty.items()))
    if cache is not None and key in cache:
        return cache[key]
    logps = model.generator.score_choices(to_messages(prompt.format_messages(**empty)), names) or [0.0] * len(names)
    prior = [math.log(p) for p in softmax(logps)]
    if cache is not None:
        cache[key] = prior
    return prior
