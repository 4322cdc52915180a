"""GSM8K: grade-school maths with chain-of-thought and numeric answer extraction.

The prompt is the 8-shot chain-of-thought of Wei et al. (2022), as in
lm-evaluation-harness's gsm8k-cot; the answer is the number after "The answer
is", else the last number in the output (lm-eval's "flexible-extract").
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from zhiku.engine.errors import InvalidRequest, NotFound
from zhiku.eval.benchmarks.base import Item

COT_EXAMPLES = [
    ("There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?",
     "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6."),
    ("If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
     "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5."),
    ("Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
     "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39. The answer is 39."),
    ("Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?",
     "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. The answer is 8."),
    ("Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
     "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. The answer is 9."),
    ("There were nine computers in the server room. Five more computers were installed each day, from monday to thursday. How many computers are now in the server room?",
     "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers were added. 9 + 20 is 29. The answer is 29."),
    ("Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls did he have at the end of wednesday?",
     "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he had 35 - 2 = 33 golf balls. The answer is 33."),
    ("Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
     "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. 23 - 15 is 8. The answer is 8."),
]
_STRICT = re.compile(r"The answer is \$?(-?[0-9][0-9,]*(?:\.[0-9]+)?)")
_NUMBER = re.compile(r"-?[0-9][0-9,]*(?:\.[0-9]+)?")


def to_number(text: str) -> float | None:
    """A number from text like "1,234" or "$18.00"; None when it is not one."""
    try:
        return float(text.replace(",", "").replace("$", "").rstrip("."))
    except ValueError:
        return None


def extract_answer(output: str) -> float | None:
    """The model's final number: "The answer is N" first, else the last number."""
    strict = _STRICT.search(output)
    if strict:
        return to_number(strict.group(1))
    numbers = _NUMBER.findall(output)
    return to_number(numbers[-1]) if numbers else None


def gold_answer(solution: str) -> str:
    """The number after '####' in a GSM8K solution."""
    if "####" not in solution:
        raise InvalidRequest("GSM8K answer without '####' marker")
    return solution.split("####")[-1].strip()


class GSM8K:
    """GSM8K test.jsonl, k-shot chain-of-thought (k <= 8, default 8)."""

    name = "gsm8k"

    def subjects(self, data_dir: Path) -> list[str]:
        return ["main"]

    def load(self, data_dir: Path, subject: str, shots: int, limit: int | None) -> list[Item]:
        path = Path(data_dir) / "test.jsonl"
        if not path.is_file():
            raise NotFound(f"benchmark file not found: {path}")
        prefix = "".join(f"Q: {q}\nA: {a}\n\n" for q, a in COT_EXAMPLES[: min(shots, len(COT_EXAMPLES))])
        items = []
        with path.open(encoding="utf-8") as fh:
            for index, line in enumerate(fh):
                if limit is not None and len(items) >= limit:
                    break
                if line.strip():
                    row = json.loads(line)
                    items.append(
                        Item(f"main/{index}", "main", f"{prefix}Q: {row['question']}\nA:",
                             gold_answer(row["answer"]), stop=("\n\n", "Q:"), max_tokens=256)
                    )
        return items

    def check(self, item: Item, output: str) -> bool:
        predicted, gold = extract_answer(output), to_number(item.gold)
        return predicted is not None and gold is not None and abs(predicted - gold) < 1e-6


GSM8K_TASK = GSM8K()
