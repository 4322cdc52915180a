"""AGIEval v1: one JSONL file per sub-task, multiple choice or cloze.

Prompts are the official zero-shot ones (English or Chinese by sub-task).
Multiple choice is scored by log-likelihood of the option letter; the
multi-answer JEC-QA questions count as correct only when the single best
letter is the whole answer, a known limit of letter scoring. Cloze items
(gaokao-mathcloze, math) are generated and compared after light LaTeX
normalisation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from zhiku.engine.errors import InvalidRequest, NotFound
from zhiku.eval.benchmarks.base import LETTERS, Item

CHINESE = {
    "logiqa-zh", "jec-qa-kd", "jec-qa-ca", "gaokao-chinese", "gaokao-english", "gaokao-geography",
    "gaokao-history", "gaokao-biology", "gaokao-chemistry", "gaokao-physics", "gaokao-mathqa",
    "gaokao-mathcloze",
}
CLOZE = {"gaokao-mathcloze", "math"}
_BOXED = re.compile(r"\\boxed\{(.*)\}")
_LATEX_NOISE = re.compile(r"\\left|\\right|\\!|\$|\s|\\,|\\;|\\text\{[^}]*\}|\^\\circ|\^\{\\circ\}")


def normalize_cloze(text: str) -> str:
    """Strip layout-only LaTeX so "$\\frac{1}{2}$" and "\\frac12"-style spacing compare equal."""
    boxed = _BOXED.search(text)
    text = boxed.group(1) if boxed else text
    text = text.strip().rstrip(".。")
    text = _LATEX_NOISE.sub("", text).replace("dfrac", "frac").replace("tfrac", "frac")
    return text.replace("；", ";").replace("，", ",")


def _gold_letters(label) -> str:
    if isinstance(label, list):
        return "".join(sorted(str(x).strip().upper() for x in label))
    return str(label or "").strip().upper()


def build_prompt(sub_task: str, row: dict) -> str:
    """The official zero-shot prompt for one row."""
    passage = (row.get("passage") or "").strip()
    passage = passage + "\n" if passage else ""
    question = row.get("question") or ""
    zh = sub_task in CHINESE
    if sub_task in CLOZE:
        return f"{passage}问题：{question}\n答案：" if zh else f"{passage}Q: {question}\nA: The answer is"
    options = row.get("options") or []
    last = LETTERS[len(options) - 1]
    joined = " ".join(o.strip() for o in options)
    if zh:
        return f"{passage}问题：{question} 选项：{joined}\n答案：从A到{last}, 我们应选择"
    return f"{passage}Q: {question} Answer Choices: {joined}\nA: Among A through {last}, the answer is"


class AGIEval:
    """AGIEval v1 from its official JSONL files."""

    name = "agieval"

    def subjects(self, data_dir: Path) -> list[str]:
        return sorted(p.stem for p in Path(data_dir).glob("*.jsonl"))

    def load(self, data_dir: Path, subject: str, shots: int, limit: int | None) -> list[Item]:
        if shots:
            raise InvalidRequest("agieval runs zero-shot here; pass --shots 0")
        path = Path(data_dir) / f"{subject}.jsonl"
        if not path.is_file():
            raise NotFound(f"benchmark file not found: {path}")
        items: list[Item] = []
        with path.open(encoding="utf-8") as fh:
            for index, line in enumerate(fh):
                if limit is not None and len(items) >= limit:
                    break
                if not line.strip():
                    continue
                row = json.loads(line)
                prompt = build_prompt(subject, row)
                if subject in CLOZE:
                    gold = str(row.get("answer") or "")
                    items.append(Item(f"{subject}/{index}", subject, prompt, gold, stop=("\n",), max_tokens=64))
                    continue
                options = row.get("options") or []
                gold = _gold_letters(row.get("label"))
                if not options or not gold:
                    raise InvalidRequest(f"{path}:{index + 1}: multiple-choice row without options or label")
                sep = "" if subject in CHINESE else " "
                choices = [f"{sep}{L}" for L in LETTERS[: len(options)]]
                items.append(Item(f"{subject}/{index}", subject, prompt, gold, choices))
        return items

    def check(self, item: Item, output: str) -> bool:
        return normalize_cloze(output) == normalize_cloze(item.gold)


AGIEVAL = AGIEval()
