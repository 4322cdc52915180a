"""Run one benchmark with one scorer: per-item results cached as JSONL, so runs resume.

Each scored item is appended to `<cache_dir>/<task>-<model>.jsonl` keyed by a
hash of the model label and the exact prompt and choices, so a changed prompt
or shot count is scored afresh while an interrupted run picks up where it
stopped.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from zhiku.engine.errors import InvalidRequest
from zhiku.eval.benchmarks.base import LETTERS, Item, Task, resolve_subjects
from zhiku.eval.benchmarks.scoring import Scorer

Advance = Callable[[int], None]


MC_MODES = ("loglik", "generate")
_LETTER = re.compile(r"\b([A-J])\b|^\s*\(?([A-J])")


def item_key(model: str, item: Item, mc_mode: str = "loglik") -> str:
    """Identity of one scoring: model, prompt, choices, generation settings."""
    blob = json.dumps([model, item.id, item.prompt, item.choices, item.stop, item.max_tokens, mc_mode], ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def slug(text: str) -> str:
    """A file-name-safe version of a model label."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "model"


def first_letter(text: str, n_options: int) -> str:
    """The first standalone option letter in a generated answer, or ""."""
    for match in _LETTER.finditer(text):
        letter = match.group(1) or match.group(2)
        if letter in LETTERS[:n_options]:
            return letter
    return ""


def score_item(task: Task, scorer: Scorer, item: Item, mc_mode: str = "loglik") -> dict:
    """Score one item: argmax log-likelihood (or a generated letter) for multiple choice,
    extract-and-compare otherwise."""
    start = time.perf_counter()
    if item.is_mc and mc_mode == "generate":
        output = scorer.generate(item.prompt, ("\n",), 8)
        prediction = first_letter(output, len(item.choices))
        correct = prediction == item.gold
        extra: dict = {"output": output}
    elif item.is_mc:
        scores = scorer.loglikelihood([(item.prompt, c) for c in item.choices])
        best = max(range(len(scores)), key=scores.__getitem__)
        prediction = LETTERS[best]
        correct = prediction == item.gold
        extra = {"loglik": scores}
    else:
        prediction = scorer.generate(item.prompt, item.stop, item.max_tokens)
        correct = task.check(item, prediction)
        extra = {}
    return {
        "id": item.id,
        "subject": item.subject,
        "gold": item.gold,
        "prediction": prediction,
        "correct": bool(correct),
        "seconds": time.perf_counter() - start,
        **extra,
    }


def load_items(task: Task, data_dir: Path, subjects: Sequence[str] | None, shots: int, limit: int | None) -> list[Item]:
    """Every item of the chosen subjects, `limit` per subject (lm-eval's --limit)."""
    chosen = resolve_subjects(task.subjects(data_dir), list(subjects or []))
    return [item for subject in chosen for item in task.load(data_dir, subject, shots, limit)]


def run_benchmark(
    task: Task,
    scorer: Scorer,
    items: Sequence[Item],
    model_label: str,
    cache_dir: Path | None = None,
    advance: Advance = lambda n: None,
    mc_mode: str = "loglik",
) -> dict:
    """Score all items (reusing cached ones); accuracy overall and per subject, and speed."""
    if mc_mode not in MC_MODES:
        raise InvalidRequest(f"unknown multiple-choice mode {mc_mode!r}; known: {', '.join(MC_MODES)}")
    cached: dict[str, dict] = {}
    cache_file = Path(cache_dir) / f"{task.name}-{slug(model_label)}.jsonl" if cache_dir else None
    if cache_file is not None and cache_file.is_file():
        for line in cache_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                cached[row["key"]] = row
    rows = []
    if any(item_key(model_label, item, mc_mode) not in cached for item in items):
        scorer.warm_up()  # load weights outside the per-question timing
    for item in items:
        key = item_key(model_label, item, mc_mode)
        if key not in cached:
            row = {"key": key, **score_item(task, scorer, item, mc_mode)}
            if cache_file is not None:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                with cache_file.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            cached[key] = row
        rows.append(cached[key])
        advance(1)
    return summarize(task.name, model_label, rows)


def summarize(task: str, model: str, rows: list[dict]) -> dict:
    """Accuracy overall, macro-averaged over subjects, per subject; questions per second."""
    by_subject: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        by_subject[row["subject"]].append(row["correct"])
    per_subject = {s: sum(v) / len(v) for s, v in sorted(by_subject.items())}
    seconds = sum(row["seconds"] for row in rows)
    return {
        "task": task,
        "model": model,
        "questions": len(rows),
        "accuracy": sum(r["correct"] for r in rows) / len(rows) if rows else 0.0,
        "macro_accuracy": sum(per_subject.values()) / len(per_subject) if per_subject else 0.0,
        "per_subject": per_subject,
        "per_subject_questions": {s: len(v) for s, v in sorted(by_subject.items())},
        "seconds": seconds,
        "questions_per_s": len(rows) / seconds if seconds > 0 else 0.0,
    }
