"""MMLU, C-Eval and CMMLU: per-subject CSV files of four-option questions.

Prompts follow lm-evaluation-harness exactly (its mmlu, ceval-valid and cmmlu
tasks) so accuracies are comparable: a one-line description naming the
subject, k solved examples from the dev split, then the question; the model
is scored on " A" / " B" / " C" / " D".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from zhiku.engine.errors import InvalidRequest
from zhiku.eval.benchmarks.base import LETTERS, Example, Item, read_rows
from zhiku.eval.benchmarks.subjects_zh import CEVAL_ZH, CMMLU_ZH


@dataclass(frozen=True)
class CsvLayout:
    """Where a benchmark keeps its splits and what its columns are called."""

    file: str  # e.g. "{split}/{subject}_{split}.csv"
    header: bool
    question: str = "question"
    options: tuple[str, ...] = ("A", "B", "C", "D")
    answer: str = "answer"
    id: str | None = None


def parse_row(row, layout: CsvLayout, index: int) -> Example:
    """One CSV row as an Example; a short row is a clear error."""
    if layout.header:
        try:
            question = row[layout.question]
            options = [row[o] for o in layout.options]
            answer = (row.get(layout.answer) or "").strip().upper()
        except KeyError as exc:
            raise InvalidRequest(f"CSV lacks column {exc}") from exc
        ident = row.get(layout.id) if layout.id else None
    else:
        if len(row) < 6:
            raise InvalidRequest(f"row {index}: expected question, A, B, C, D, answer")
        question, options, answer, ident = row[0], row[1:5], row[5].strip().upper(), None
    return Example(str(ident if ident not in (None, "") else index), question, list(options), answer)


@dataclass
class CsvMCTask:
    """A four-option CSV benchmark; `split` is what is scored, `shot_split` supplies examples."""

    name: str
    layout: CsvLayout
    split: str
    shot_split: str
    description: str  # formatted with {subject}
    answer_cue: str  # the last line of each question, e.g. "Answer:"
    subject_names: dict[str, str] = field(default_factory=dict)

    def _path(self, data_dir: Path, split: str, subject: str) -> Path:
        return Path(data_dir) / self.layout.file.format(split=split, subject=subject)

    def subjects(self, data_dir: Path) -> list[str]:
        folder = self._path(data_dir, self.split, "x").parent
        suffix = self.layout.file.split("{subject}")[-1].format(split=self.split)
        return sorted(p.name[: -len(suffix)] for p in folder.glob(f"*{suffix}")) if folder.is_dir() else []

    def examples(self, data_dir: Path, split: str, subject: str) -> list[Example]:
        rows = read_rows(self._path(data_dir, split, subject), self.layout.header)
        return [parse_row(row, self.layout, i) for i, row in enumerate(rows)]

    def render(self, ex: Example) -> str:
        lines = [ex.question.strip()] + [f"{L}. {o}" for L, o in zip(LETTERS, ex.options)]
        return "\n".join(lines + [self.answer_cue])

    def load(self, data_dir: Path, subject: str, shots: int, limit: int | None) -> list[Item]:
        docs = self.examples(data_dir, self.split, subject)
        if limit is not None:
            docs = docs[:limit]
        shot_docs: list[Example] = []
        if shots:
            shot_path = self._path(data_dir, self.shot_split, subject)
            pool = self.examples(data_dir, self.shot_split, subject) if shot_path.is_file() else None
            shot_docs = (pool or self.examples(data_dir, self.split, subject))[: shots + 1]
        name = self.subject_names.get(subject, subject.replace("_", " "))
        header = self.description.format(subject=name)
        items = []
        for ex in docs:
            if ex.answer not in tuple(LETTERS[: len(ex.options)]):
                continue  # an unlabelled split (C-Eval test) cannot be scored
            # Without a dev split the examples come from the scored split, never the item itself.
            shots_for = [s for s in shot_docs if s is not ex and s.question != ex.question][:shots]
            solved = "".join(f"{self.render(s)} {s.answer}\n\n" for s in shots_for)
            items.append(
                Item(
                    id=f"{subject}/{ex.id}",
                    subject=subject,
                    prompt=header + solved + self.render(ex),
                    gold=ex.answer,
                    choices=[f" {L}" for L in LETTERS[: len(ex.options)]],
                )
            )
        return items

    def check(self, item: Item, output: str) -> bool:
        return output.strip().upper().startswith(item.gold)


MMLU = CsvMCTask(
    name="mmlu",
    layout=CsvLayout(file="{split}/{subject}_{split}.csv", header=False),
    split="test",
    shot_split="dev",
    description="The following are multiple choice questions (with answers) about {subject}.\n\n",
    answer_cue="Answer:",
)

CEVAL = CsvMCTask(
    name="ceval",
    layout=CsvLayout(file="{split}/{subject}_{split}.csv", header=True, id="id"),
    split="val",
    shot_split="dev",
    description="以下是中国关于{subject}的单项选择题，请选出其中的正确答案。\n\n",
    answer_cue="答案：",
    subject_names=CEVAL_ZH,
)

CMMLU = CsvMCTask(
    name="cmmlu",
    layout=CsvLayout(file="{split}/{subject}.csv", header=True, question="Question", answer="Answer"),
    split="test",
    shot_split="dev",
    description="以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n",
    answer_cue="答案：",
    subject_names=CMMLU_ZH,
)
