"""LLM benchmarks: loaders for MMLU, C-Eval, CMMLU, AGIEval and GSM8K, scorers and a runner.

`TASKS` maps a task name to its loader; `default_shots` is what `--shots`
means when not given (MMLU 5-shot like the paper, C-Eval/CMMLU 5-shot,
AGIEval zero-shot, GSM8K 8-shot chain-of-thought).
"""

from __future__ import annotations

from zhiku.engine.errors import InvalidRequest
from zhiku.eval.benchmarks.agieval import AGIEVAL
from zhiku.eval.benchmarks.base import Item, Task
from zhiku.eval.benchmarks.gsm8k import GSM8K_TASK
from zhiku.eval.benchmarks.mc_csv import CEVAL, CMMLU, MMLU

TASKS: dict[str, Task] = {
    "mmlu": MMLU,
    "ceval": CEVAL,
    "cmmlu": CMMLU,
    "agieval": AGIEVAL,
    "gsm8k": GSM8K_TASK,
}
DEFAULT_SHOTS = {"mmlu": 5, "ceval": 5, "cmmlu": 5, "agieval": 0, "gsm8k": 8}


def get_task(name: str) -> Task:
    """A task by name, or a clear error listing the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise InvalidRequest(f"unknown benchmark {name!r}; known: {', '.join(TASKS)}") from None


__all__ = ["DEFAULT_SHOTS", "Item", "TASKS", "Task", "get_task"]
