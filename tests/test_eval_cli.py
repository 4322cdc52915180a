"""`zhiku eval` end to end on fixtures: reports with plots land in --out (this is the CI report)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zhiku.cli.eval import app

FIX = Path(__file__).parent / "fixtures" / "eval"
runner = CliRunner()


def _ok(args: list[str]):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result


def test_retrieval_report_with_plots_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_EMBED__BACKEND", "fake")
    out = tmp_path / "r"
    _ok(["retrieval", "--data", str(FIX / "beir"), "--out", str(out), "--alphas", "0.3,0.7", "--k", "1,10"])
    for name in ("report.md", "retrieval.json", "retrieval_metrics.png", "retrieval_latency.png"):
        assert (out / name).stat().st_size > 0, name
    data = json.loads((out / "retrieval.json").read_text())
    configs = [r["config"] for r in data["results"]]
    assert configs == ["dense", "bm25", "hybrid-convex-a0.3", "hybrid-convex-a0.7", "hybrid-rrf", "hybrid-dbsf"]
    assert all(0 <= r["metrics"]["ndcg@10"] <= 1 and r["queries"] == 4 for r in data["results"])
    assert "ndcg@10" in (out / "report.md").read_text()
    # Resume: the saved per-configuration results are reused as they are.
    state = json.loads((out / "retrieval.state.json").read_text())
    state["results"]["bm25"]["metrics"]["ndcg@10"] = 0.123456
    (out / "retrieval.state.json").write_text(json.dumps(state))
    _ok(["retrieval", "--data", str(FIX / "beir"), "--out", str(out), "--alphas", "0.3,0.7", "--k", "1,10"])
    again = json.loads((out / "retrieval.json").read_text())
    assert again["results"][1]["metrics"]["ndcg@10"] == 0.123456


def test_retrieval_bad_input_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_EMBED__BACKEND", "fake")
    result = runner.invoke(app, ["retrieval", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)])
    assert result.exit_code == 1 and "no such dataset directory" in result.output
    result = runner.invoke(app, ["retrieval", "--data", str(FIX / "beir"), "--out", str(tmp_path), "--modes", "magic"])
    assert result.exit_code == 1 and "unknown search mode" in result.output


def test_answers_extractive_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_EMBED__BACKEND", "fake")
    out = tmp_path / "a"
    _ok(["answers", "--data", str(FIX / "beir"), "--out", str(out), "--mode", "bm25"])
    summary = json.loads((out / "answers.json").read_text())["summary"]
    assert summary["questions"] == 5 and summary["unanswerable"] == 1
    assert 0 <= summary["f1"] <= 1 and summary["citation_recall"] > 0
    assert (out / "answers.png").stat().st_size > 0 and (out / "answers.md").is_file()


def test_bench_two_models_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "b"
    result = _ok(["bench", "--task", "mmlu", "--data", str(FIX / "mmlu"), "--model", "fake:1,fake:2",
                  "--out", str(out), "--shots", "0", "--limit", "2"])
    assert "fake:1: accuracy" in result.output
    data = json.loads((out / "bench.json").read_text())
    assert [r["model"] for r in data["results"]] == ["fake:1", "fake:2"]
    assert all(r["questions"] == 4 for r in data["results"])
    for name in ("bench.md", "bench_accuracy.png", "bench_speed.png"):
        assert (out / name).stat().st_size > 0
    assert "| fake:2 |" in (out / "bench.md").read_text()


def test_bench_unknown_subject_is_a_clean_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "--task", "cmmlu", "--data", str(FIX / "cmmlu"), "--model", "fake",
                                 "--subjects", "astrology", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "unknown subjects" in result.output


def test_each_configuration_is_timed_with_cold_query_vectors() -> None:
    from types import SimpleNamespace

    from zhiku.engine.embedders.fake import FakeEmbedder
    from zhiku.eval.beir import load_beir
    from zhiku.eval.retrieval import RetrievalConfig, run_config

    class StubKB:
        """Records whether the embedder's query cache was empty when searching."""

        def __init__(self) -> None:
            self.embedder = FakeEmbedder()
            self.embedder.embed_query("old query")  # a vector cached before the run
            self.calls = 0

        def search(self, text, top_k, mode, fusion, alpha):
            self.calls += 1
            if self.calls == 1:  # the first search of the configuration: the cache must be cold
                before = self.embedder.calls
                self.embedder.embed_query("old query")
                assert self.embedder.calls == before + 1, "cached query vectors were not cleared"
            return [SimpleNamespace(doc_id="d1"), SimpleNamespace(doc_id="d1"), SimpleNamespace(doc_id="d4")]

    kb, data = StubKB(), load_beir(FIX / "beir")
    result = run_config(kb, data, RetrievalConfig("dense"), (1, 10), lambda n: None)
    assert kb.calls == 4 + 1  # four judged queries and one untimed warm-up
    assert result["metrics"]["recall@10"] == pytest.approx((1.0 + 0 + 0 + 1.0) / 4)
