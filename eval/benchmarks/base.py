"""What a benchmark is: items to score, and how a generated answer is checked.

A multiple-choice item carries a prompt and one continuation per option (" A",
" B", ...); the option with the highest log-likelihood is the prediction. A
generation item (GSM8K, AGIEval cloze) carries a prompt, stop strings and the
gold answer; its task extracts and compares the answer.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from zhiku.engine.errors import InvalidRequest, NotFound

LETTERS = "ABCDEFGHIJ"


@dataclass
class Item:
    """One question, ready to score."""

    id: str
    subject: str
    prompt: str
    gold: str  # a letter for multiple choice (several for multi-answer), else the answer text
    choices: list[str] = field(default_factory=list)  # continuations; empty means generate
    stop: tuple[str, ...] = ()
    max_tokens: int = 256

    @property
    def is_mc(self) -> bool:
        return bool(self.choices)


@dataclass
class Example:
    """A parsed multiple-choice question before prompting."""

    id: str
    question: str
    options: list[str]
    answer: str  # letter(s); "" when the split has no labels


class Task(Protocol):
    """A benchmark: which subjects exist, how to load items, how to check generations."""

    name: str

    def subjects(self, data_dir: Path) -> list[str]: ...

    def load(self, data_dir: Path, subject: str, shots: int, limit: int | None) -> list[Item]: ...

    def check(self, item: Item, output: str) -> bool: ...


def read_rows(path: Path, header: bool) -> list[dict[str, str] | list[str]]:
    """Rows of a UTF-8 CSV (dicts with a header, lists without); a clear error if missing."""
    if not path.is_file():
        raise NotFound(f"benchmark file not found: {path}")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh)) if header else [row for row in csv.reader(fh) if row]


def pick(items: list, limit: int | None, seed: int | None = None) -> list:
    """The first `limit` items (as lm-eval's --limit), or a seeded sample when a seed is given."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit < 0:
        raise InvalidRequest("--limit must be >= 0")
    if seed is None:
        return list(items[:limit])
    return random.Random(seed).sample(list(items), limit)


def resolve_subjects(available: list[str], wanted: list[str] | None) -> list[str]:
    """Requested subjects in order, or all; unknown names are an error that lists the valid ones."""
    if not wanted:
        return available
    unknown = [s for s in wanted if s not in available]
    if unknown:
        raise InvalidRequest(f"unknown subjects {unknown}; available: {', '.join(available)}")
    return list(wanted)
