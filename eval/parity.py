"""Parity check against lm-evaluation-harness on a local MMLU subset.

lm-eval normally downloads MMLU from the Hugging Face hub; here the per-subject
CSVs are converted to JSONL (strings stay strings: CSV readers would turn "0.50"
into 0.5) and described to lm-eval as local tasks with its own mmlu prompt.
Both harnesses then score the same model folder on the same questions and
shots, and the two accuracies go into one report.

Run: `python -m zhiku.eval.parity --model DIR --data MMLU_DIR --subjects a,b,c,d,e --limit 20`
(lm-eval must be importable; it is not a zhiku dependency).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from zhiku.engine.errors import ConfigError
from zhiku.eval.benchmarks.base import LETTERS
from zhiku.eval.benchmarks.mc_csv import MMLU

TASK_YAML = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
description: {description}
doc_to_text: "{{{{question.strip()}}}}\\nA. {{{{choices[0]}}}}\\nB. {{{{choices[1]}}}}\\nC. {{{{choices[2]}}}}\\nD. {{{{choices[3]}}}}\\nAnswer:"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


def write_lm_eval_tasks(mmlu_dir: Path, subjects: list[str], work: Path) -> list[str]:
    """JSONL data and one lm-eval task YAML per subject under `work`; returns the task names."""
    work.mkdir(parents=True, exist_ok=True)
    names = []
    for subject in subjects:
        rows = MMLU.examples(mmlu_dir, "test", subject)
        data = work / f"{subject}.jsonl"
        with data.open("w", encoding="utf-8") as fh:
            for ex in rows:
                record = {"question": ex.question, "subject": subject, "choices": ex.options,
                          "answer": LETTERS.index(ex.answer)}
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        task = f"zhiku_mmlu_{subject}"
        description = json.dumps(MMLU.description.format(subject=subject.replace("_", " ")))
        (work / f"{task}.yaml").write_text(TASK_YAML.format(task=task, data=data, description=description))
        names.append(task)
    return names


def run_lm_eval(model_dir: Path, tasks: list[str], include: Path, shots: int, limit: int) -> dict[str, float]:
    """lm-eval's `hf` model on the local tasks; accuracy per task."""
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError as exc:
        raise ConfigError("lm-eval is not importable; install lm-eval to run the parity check") from exc
    out = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={model_dir},dtype=float32",
        tasks=tasks,
        num_fewshot=shots,
        limit=limit,
        batch_size=1,
        device="cpu",
        task_manager=TaskManager(include_path=str(include)),
    )
    return {name: float(res["acc,none"]) for name, res in out["results"].items()}


def run_zhiku(model_dir: Path, mmlu_dir: Path, subjects: list[str], shots: int, limit: int, threads: int,
              cache: Path | None = None) -> dict:
    """Our harness on the same questions."""
    from zhiku.eval.benchmarks.runner import load_items, run_benchmark
    from zhiku.eval.benchmarks.scoring import HFScorer

    items = load_items(MMLU, mmlu_dir, subjects, shots, limit)
    return run_benchmark(MMLU, HFScorer(model_dir, threads=threads), items, f"hf:{model_dir}", cache)


def main(argv: list[str] | None = None) -> None:
    """Run both harnesses and write parity.json and parity.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="A local Hugging Face model folder.")
    parser.add_argument("--data", type=Path, required=True, help="MMLU folder with test/<subject>_test.csv.")
    parser.add_argument("--subjects", required=True)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--shots", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("eval-out/parity"))
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    subjects = [s.strip() for s in args.subjects.split(",") if s.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    tasks = write_lm_eval_tasks(args.data, subjects, args.out / "lm_eval_tasks")
    start = time.perf_counter()
    ours = run_zhiku(args.model, args.data, subjects, args.shots, args.limit, args.threads, args.out / "cache")
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    theirs = run_lm_eval(args.model, tasks, args.out / "lm_eval_tasks", args.shots, args.limit)
    theirs_s = time.perf_counter() - start
    per_subject = {s: {"zhiku": ours["per_subject"].get(s), "lm_eval": theirs.get(f"zhiku_mmlu_{s}")} for s in subjects}
    counts = ours["per_subject_questions"]
    lm_overall = sum(per_subject[s]["lm_eval"] * counts[s] for s in subjects) / sum(counts[s] for s in subjects)
    result = {
        "settings": {"model": str(args.model), "subjects": subjects, "limit_per_subject": args.limit,
                     "shots": args.shots, "dtype": "float32", "device": "cpu", "lm_eval_model": "hf",
                     "prompt": "lm-eval mmlu default (description + question + A-D + 'Answer:', choices ' A'..' D')"},
        "zhiku_accuracy": ours["accuracy"],
        "lm_eval_accuracy": lm_overall,
        "difference_points": 100 * (ours["accuracy"] - lm_overall),
        "per_subject": per_subject,
        "seconds": {"zhiku": ours_s, "lm_eval": theirs_s},
    }
    (args.out / "parity.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Parity with lm-evaluation-harness (MMLU subset)", "",
        *(f"- {k}: {v}" for k, v in result["settings"].items()), "",
        f"zhiku accuracy **{ours['accuracy']:.4f}**, lm-eval accuracy **{lm_overall:.4f}**, "
        f"difference {result['difference_points']:+.2f} points ({ours['questions']} questions).", "",
        "| subject | zhiku | lm-eval |", "|---|---|---|",
        *(f"| {s} | {v['zhiku']:.4f} | {v['lm_eval']:.4f} |" for s, v in per_subject.items()), "",
    ]
    (args.out / "parity.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
