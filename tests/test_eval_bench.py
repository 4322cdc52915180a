"""Benchmark loaders on fixtures in the official formats, answer extraction, runner and cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zhiku.engine.errors import ConfigError, InvalidRequest, NotFound
from zhiku.engine.models import DEFAULT_GGUF
from zhiku.eval.benchmarks import TASKS, get_task
from zhiku.eval.benchmarks.agieval import normalize_cloze
from zhiku.eval.benchmarks.base import pick
from zhiku.eval.benchmarks.gsm8k import extract_answer
from zhiku.eval.benchmarks.runner import load_items, run_benchmark
from zhiku.eval.benchmarks.scoring import FakeScorer, HFScorer, build_scorer

FIX = Path(__file__).parent / "fixtures" / "eval"


def test_mmlu_prompt_is_lm_eval_format_with_dev_shots() -> None:
    items = TASKS["mmlu"].load(FIX / "mmlu", "astronomy", shots=1, limit=None)
    assert [i.gold for i in items] == ["B", "C", "B"]
    assert items[0].choices == [" A", " B", " C", " D"]
    assert items[0].prompt == (
        "The following are multiple choice questions (with answers) about astronomy.\n\n"
        "Which planet is the largest?\nA. Earth\nB. Saturn\nC. Jupiter\nD. Neptune\nAnswer: C\n\n"
        "What is the closest star to the Earth?\nA. Proxima Centauri\nB. The Sun\nC. Sirius\n"
        "D. Alpha Centauri A\nAnswer:"
    )
    assert 'Which planet is known as the "Red Planet"?' in items[1].prompt


def test_mmlu_without_dev_takes_shots_from_other_test_items() -> None:
    items = TASKS["mmlu"].load(FIX / "mmlu", "high_school_mathematics", shots=1, limit=None)
    assert items[0].prompt.count("What is 2 + 2?") == 1  # never its own example
    assert items[0].prompt.count("Answer:") == 2
    assert "D. 0.50" in items[1].prompt  # numbers stay text, never parsed to floats


def test_subjects_and_limit() -> None:
    assert TASKS["mmlu"].subjects(FIX / "mmlu") == ["astronomy", "high_school_mathematics"]
    assert len(load_items(TASKS["mmlu"], FIX / "mmlu", None, 0, 1)) == 2
    with pytest.raises(InvalidRequest, match="available"):
        load_items(TASKS["mmlu"], FIX / "mmlu", ["nope"], 0, None)


def test_ceval_scores_val_with_chinese_prompt_and_skips_unlabelled_test() -> None:
    task = TASKS["ceval"]
    items = task.load(FIX / "ceval", "computer_network", shots=1, limit=None)
    assert [i.id for i in items] == ["computer_network/0", "computer_network/1"]
    assert items[0].prompt.startswith("以下是中国关于计算机网络的单项选择题，请选出其中的正确答案。\n\n")
    assert "D. D类\n答案： C\n\n" in items[0].prompt and items[0].prompt.endswith("答案：")
    from dataclasses import replace

    test_split = replace(task, split="test")
    assert test_split.load(FIX / "ceval", "computer_network", 0, None) == []


def test_cmmlu_header_with_index_column() -> None:
    items = TASKS["cmmlu"].load(FIX / "cmmlu", "agronomy", shots=1, limit=None)
    assert [i.gold for i in items] == ["D", "A"]
    assert items[0].prompt.startswith("以下是关于农学的单项选择题，请直接给出正确答案的选项。\n\n水稻属于哪一类作物？")
    assert items[1].id == "agronomy/1"


def test_agieval_multiple_choice_english_chinese_and_multi_answer() -> None:
    task = TASKS["agieval"]
    assert task.subjects(FIX / "agieval") == ["gaokao-mathcloze", "jec-qa-kd", "logiqa-zh", "lsat-ar", "math"]
    en = task.load(FIX / "agieval", "lsat-ar", 0, None)[0]
    assert en.prompt.endswith("(E)J, G, F, H\nA: Among A through E, the answer is")
    assert en.choices[-1] == " E" and en.gold == "B"
    zh = task.load(FIX / "agieval", "logiqa-zh", 0, None)[0]
    assert zh.prompt.startswith("所有的鸟都会飞。企鹅是鸟。\n问题：") and zh.prompt.endswith("答案：从A到D, 我们应选择")
    assert zh.choices[0] == "A"
    multi = task.load(FIX / "agieval", "jec-qa-kd", 0, None)
    assert [m.gold for m in multi] == ["ABC", "B"]
    with pytest.raises(InvalidRequest):
        task.load(FIX / "agieval", "lsat-ar", 1, None)


def test_agieval_cloze_generation_check() -> None:
    task = TASKS["agieval"]
    cloze = task.load(FIX / "agieval", "gaokao-mathcloze", 0, None)
    assert not cloze[0].is_mc and cloze[0].prompt.endswith("\n答案：")
    assert task.check(cloze[1], " $2$; $7$") and not task.check(cloze[1], "2;8")
    math = task.load(FIX / "agieval", "math", 0, None)[0]
    assert math.prompt.endswith("\nA: The answer is")
    assert task.check(math, " $\\dfrac{3}{4}$.")
    assert normalize_cloze("\\boxed{\\left(3,4\\right]}") == "(3,4]"


def test_gsm8k_loader_and_numeric_extraction() -> None:
    task = TASKS["gsm8k"]
    items = task.load(FIX / "gsm8k", "main", shots=8, limit=None)
    assert [i.gold for i in items] == ["10", "12"]
    assert items[0].prompt.count("The answer is") == 8 and items[0].prompt.endswith("in each box. He eats 2 apples. How many apples does he have left?\nA:")
    assert extract_answer("So 3 * 4 = 12. 12 - 2 = 10. The answer is 10.") == 10
    assert extract_answer("It costs $1,200 / 100 = 12 dollars") == 12
    assert extract_answer("no idea") is None
    assert task.check(items[1], " 1200 / 100 = 12. The answer is $12.00.")
    assert not task.check(items[1], " The answer is 13.")


def test_missing_files_and_unknown_task_are_domain_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        TASKS["gsm8k"].load(tmp_path, "main", 0, None)
    with pytest.raises(NotFound):
        TASKS["mmlu"].load(tmp_path, "astronomy", 0, None)
    with pytest.raises(InvalidRequest, match="known"):
        get_task("hellaswag")
    with pytest.raises(ConfigError):
        build_scorer("llamacpp:")


def test_pick_first_n_or_seeded_sample() -> None:
    assert pick(list(range(10)), 3) == [0, 1, 2]
    assert pick(list(range(10)), 3, seed=1) == pick(list(range(10)), 3, seed=1) != [0, 1, 2]


def test_build_scorer_registry() -> None:
    assert isinstance(build_scorer("fake"), FakeScorer)
    hf = build_scorer("/models/qwen.gguf")
    assert isinstance(hf, HFScorer) and hf.gguf_file == "qwen.gguf"
    assert isinstance(build_scorer("hf:/models/dir"), HFScorer)


class OracleScorer(FakeScorer):
    """Knows the answers: the gold letter gets the top score; counts calls."""

    def __init__(self, gold: dict[str, str]) -> None:
        super().__init__("oracle")
        self.gold, self.calls = gold, 0

    def loglikelihood(self, requests):
        self.calls += 1
        return [0.0 if self.gold.get(ctx, "") == cont.strip() else -1.0 for ctx, cont in requests]


def test_runner_scores_caches_and_resumes(tmp_path: Path) -> None:
    task = TASKS["mmlu"]
    items = load_items(task, FIX / "mmlu", None, 0, None)
    oracle = OracleScorer({i.prompt: i.gold for i in items[:3]})
    result = run_benchmark(task, oracle, items, "oracle", tmp_path)
    assert result["questions"] == 5 and result["accuracy"] == pytest.approx(3 / 5)
    assert result["per_subject"]["astronomy"] == 1.0
    lines = (tmp_path / "mmlu-oracle.jsonl").read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[0])["correct"] is True
    # A second run is served from the cache: no model calls at all.
    again = OracleScorer({})
    assert run_benchmark(task, again, items, "oracle", tmp_path)["accuracy"] == result["accuracy"]
    assert again.calls == 0


def test_runner_generation_path_with_fake() -> None:
    task = TASKS["gsm8k"]
    items = load_items(task, FIX / "gsm8k", None, 8, None)
    result = run_benchmark(task, FakeScorer(), items, "fake")
    assert result["questions"] == 2 and 0.0 <= result["accuracy"] <= 1.0
    assert result["questions_per_s"] > 0


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random two-layer Qwen2 with a byte-level BPE trained on the fixtures: no downloads."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    folder = tmp_path_factory.mktemp("tiny-lm")
    texts = [p.read_text(encoding="utf-8") for p in FIX.rglob("*.*sv")] + [p.read_text(encoding="utf-8") for p in FIX.rglob("*.jsonl")]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>")
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.mark.integration
def test_hf_scorer_matches_a_direct_forward_pass(tiny_model: Path) -> None:
    import torch

    scorer = HFScorer(tiny_model, threads=1)
    ctx = "The following are multiple choice questions.\n\nWhat is 2 + 2?\nA. 3\nB. 4\nAnswer:"
    requests = [(ctx, " A"), (ctx, " B"), (ctx, " four apples"), ("", "hello")]
    got = scorer.loglikelihood(requests)
    for (c, x), value in zip(requests, got):
        ctx_ids, cont_ids = scorer.encode_pair(c, x)
        ids = torch.tensor([ctx_ids + cont_ids])
        with torch.no_grad():
            logprobs = torch.log_softmax(scorer.model(ids).logits[0].float(), -1)
        expected = sum(float(logprobs[len(ctx_ids) - 1 + i, t]) for i, t in enumerate(cont_ids))
        assert value == pytest.approx(expected, abs=1e-4)
    assert len(scorer.encode_pair(ctx, " B")[1]) >= 1
    text = scorer.generate("Q: What is 2 + 2?\nA:", stop=("\n\n",), max_tokens=5)
    assert isinstance(text, str) and "\n\n" not in text


@pytest.mark.integration
def test_bench_cli_with_tiny_model_writes_report(tiny_model: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from zhiku.cli.eval import app

    out = tmp_path / "bench"
    result = CliRunner().invoke(app, ["bench", "--task", "cmmlu", "--data", str(FIX / "cmmlu"), "--model",
                                      f"{tiny_model},fake", "--out", str(out), "--threads", "1"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "bench.json").read_text())
    assert [r["questions"] for r in data["results"]] == [2, 2]
    assert (out / "bench_accuracy.png").stat().st_size > 0


def test_generation_mode_multiple_choice() -> None:
    from zhiku.eval.benchmarks.runner import first_letter

    assert first_letter(" B. 4", 4) == "B" and first_letter("(C) because", 4) == "C"
    assert first_letter("I think E", 4) == "" and first_letter("", 4) == ""

    class Says(FakeScorer):
        def generate(self, prompt, stop, max_tokens):
            return " B"

    task = TASKS["mmlu"]
    items = load_items(task, FIX / "mmlu", ["astronomy"], 0, None)
    result = run_benchmark(task, Says(), items, "says-b", mc_mode="generate")
    assert result["accuracy"] == pytest.approx(2 / 3)  # golds are B, C, B
    with pytest.raises(InvalidRequest):
        run_benchmark(task, Says(), items, "says-b", mc_mode="vibes")


@pytest.mark.parametrize(
    ("task", "folder", "subject", "shots"),
    [("mmlu", "mmlu", "anatomy", 0), ("cmmlu", "cmmlu", "agronomy", 5), ("agieval", "agieval", "jec-qa-ca", 0),
     ("agieval", "agieval", "math", 0), ("agieval", "agieval", "sat-en", 0), ("gsm8k", "gsm8k", "main", 8)],
)
def test_loaders_read_the_shared_data(shared_data: Path, task: str, folder: str, subject: str, shots: int) -> None:
    items = TASKS[task].load(shared_data / "benchmarks" / folder, subject, shots, 20)
    assert len(items) == 20
    assert all(i.gold and i.prompt for i in items)
    assert all(len(i.choices) >= 4 for i in items) or all(not i.is_mc for i in items)


def test_beir_loader_reads_the_shared_squad(shared_data: Path) -> None:
    from zhiku.eval.beir import load_beir

    data = load_beir(shared_data / "retrieval" / "squad-dev", limit=50)
    assert len(data.queries) == 50 and len(data.corpus) > 1000
    assert all(data.qrels[q] for q in data.queries) and all(data.answers[q] for q in data.queries)


def test_parity_writes_lm_eval_tasks_with_the_same_prompt(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    from zhiku.eval.parity import write_lm_eval_tasks

    names = write_lm_eval_tasks(FIX / "mmlu", ["high_school_mathematics"], tmp_path)
    spec = yaml.safe_load((tmp_path / f"{names[0]}.yaml").read_text())
    rows = [json.loads(line) for line in (tmp_path / "high_school_mathematics.jsonl").read_text().splitlines()]
    assert rows[1]["choices"][3] == "0.50" and rows[1]["answer"] == 1
    # Render lm-eval's template by hand; it must equal our 0-shot prompt.
    doc = rows[1]
    text = spec["doc_to_text"].replace("{{question.strip()}}", doc["question"].strip())
    for i in range(4):
        text = text.replace(f"{{{{choices[{i}]}}}}", doc["choices"][i])
    ours = TASKS["mmlu"].load(FIX / "mmlu", "high_school_mathematics", 0, None)[1]
    assert spec["description"] + text == ours.prompt
    assert spec["doc_to_choice"] == [c.strip() for c in ours.choices]


GGUF = Path(__file__).resolve().parents[1] / ".models" / DEFAULT_GGUF


@pytest.mark.integration
def test_llamacpp_scorer_reuses_context_without_changing_scores() -> None:
    pytest.importorskip("llama_cpp")
    if not GGUF.is_file():
        pytest.skip("GGUF not assembled (run deploy/fetch_models.py)")
    from zhiku.eval.benchmarks.scoring import LlamaCppScorer

    scorer = LlamaCppScorer(GGUF, threads=1, n_ctx=256)
    ctx = "Question: 2 + 2 = ?\nA. 3\nB. 4\nAnswer:"
    grouped = scorer.loglikelihood([(ctx, " A"), (ctx, " B"), (ctx, " B. 4")])
    alone = [scorer.loglikelihood([(ctx, c)])[0] for c in (" B. 4", " A")]
    assert grouped[0] == pytest.approx(alone[1], abs=1e-4)
    assert grouped[2] == pytest.approx(alone[0], abs=1e-4)
    assert all(v < 0 for v in grouped) and grouped[2] < grouped[1]  # a longer continuation is less likely
