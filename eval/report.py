"""Write eval results as JSON, a Markdown report and PNG plots (matplotlib, Agg backend).

One writer per kind of result; each returns the paths it wrote. Plots are
optional only in the sense that a missing matplotlib is a clear error, never
a silent gap.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zhiku.engine.errors import ConfigError


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ConfigError("plots need matplotlib (pip install matplotlib)") from exc
    matplotlib.use("Agg")  # files only; never a display
    import matplotlib.pyplot as plt

    return plt


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return " ".join(str(value).split()).replace("|", "\\|")  # one table row per record


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(out: Path, name: str, payload: Any) -> Path:
    """`<out>/<name>.json`, pretty and UTF-8."""
    path = Path(out) / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def _bar(path: Path, labels: Sequence[str], series: dict[str, Sequence[float]], title: str, ylabel: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(min(14.0, max(6.0, 0.8 * len(labels) * max(1, len(series)) ** 0.5 + 2)), 4.5))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        ax.bar([x + i * width for x in range(len(labels))], values, width, label=name)
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(labels))])
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def retrieval_report(out: Path, results: list[dict], meta: dict, main_metric: str = "ndcg@10") -> list[Path]:
    """results.json, report.md, a metric-per-configuration chart and a quality-vs-latency scatter."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_json(out, "retrieval", {"meta": meta, "results": results})]
    metrics = list(results[0]["metrics"]) if results else []
    if main_metric not in metrics and metrics:
        main_metric = metrics[0]
    names = [r["config"] for r in results]
    highlight = [m for m in ("ndcg@10", "recall@10", "mrr@10", "map@10") if m in metrics] or metrics[:4]
    paths.append(
        _bar(out / "retrieval_metrics.png", names, {m: [r["metrics"][m] for r in results] for m in highlight},
             f"Retrieval quality on {meta.get('dataset', '')}", "score")
    )
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for r in results:
        ax.scatter(r["latency_ms"]["p50"], r["metrics"].get(main_metric, 0.0))
        ax.annotate(r["config"], (r["latency_ms"]["p50"], r["metrics"].get(main_metric, 0.0)), fontsize=7)
    ax.set_xlabel("p50 latency per query (ms)")
    ax.set_ylabel(main_metric)
    ax.set_title("Quality against latency")
    fig.tight_layout()
    fig.savefig(out / "retrieval_latency.png", dpi=110)
    plt.close(fig)
    paths.append(out / "retrieval_latency.png")
    best = max(results, key=lambda r: r["metrics"].get(main_metric, 0.0)) if results else None
    table = md_table(
        ["config", *metrics, "p50 ms", "p95 ms"],
        [[r["config"], *(r["metrics"][m] for m in metrics), r["latency_ms"]["p50"], r["latency_ms"]["p95"]] for r in results],
    )
    md = [
        f"# Retrieval eval: {meta.get('dataset', '')}",
        "",
        _meta_lines(meta),
        "",
        f"Best by {main_metric}: **{best['config']}** ({best['metrics'][main_metric]:.4f})" if best else "No results.",
        "",
        table,
        "",
        "![metrics per configuration](retrieval_metrics.png)",
        "",
        "![quality against latency](retrieval_latency.png)",
        "",
    ]
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    return paths + [out / "report.md"]


def _meta_lines(meta: dict) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in meta.items())


def answers_report(out: Path, result: dict, meta: dict) -> list[Path]:
    """answers.json, answers.md and a bar chart of the summary metrics."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_json(out, "answers", {"meta": meta, **result})]
    summary = result["summary"]
    keys = ["em", "f1", "citation_precision", "citation_recall", "refusal_rate_unanswerable", "false_refusal_rate", "faithfulness"]
    shown = [k for k in keys if summary.get(k) is not None]
    paths.append(_bar(out / "answers.png", shown, {"score": [summary[k] for k in shown]}, "Answer quality", "rate"))
    misses = [r for r in result["rows"] if r["answerable"] and r["f1"] < 0.5][:10]
    md = [
        "# Answer eval", "", _meta_lines(meta), "",
        md_table(["metric", "value"], [[k, summary[k]] for k in summary]), "",
        "![answer quality](answers.png)", "",
        "## Worst answers (first 10 with F1 < 0.5)", "",
        md_table(["question", "answer", "gold"], [[r["question"], r["answer"][:80], "; ".join(r["gold"][:2])] for r in misses]),
        "",
    ]
    (out / "answers.md").write_text("\n".join(md), encoding="utf-8")
    return paths + [out / "answers.md"]


def bench_report(out: Path, results: list[dict], meta: dict) -> list[Path]:
    """bench.json, bench.md (models side by side) and accuracy / speed charts."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_json(out, "bench", {"meta": meta, "results": results})]
    models = list(dict.fromkeys(r["model"] for r in results))
    subjects = sorted({s for r in results for s in r["per_subject"]})
    series = {m: [next(r for r in results if r["model"] == m)["per_subject"].get(s, 0.0) for s in subjects] for m in models}
    if len(subjects) > 1:
        series = {m: v + [next(r for r in results if r["model"] == m)["accuracy"]] for m, v in series.items()}
        subjects = subjects + ["ALL"]
    title = f"{meta.get('task', '')} accuracy" + (f" ({models[0]})" if len(models) == 1 else "")
    paths.append(_bar(out / "bench_accuracy.png", subjects, series, title, "accuracy"))
    paths.append(_bar(out / "bench_speed.png", models, {"questions/s": [r["questions_per_s"] for r in results]},
                      "Throughput", "questions per second"))
    md = [
        f"# Benchmark: {meta.get('task', '')}", "", _meta_lines(meta), "",
        md_table(["model", "questions", "accuracy", "macro accuracy", "questions/s"],
                 [[r["model"], r["questions"], r["accuracy"], r["macro_accuracy"], r["questions_per_s"]] for r in results]),
        "", "## Per subject", "",
        md_table(["subject", *models], [[s, *(next(r for r in results if r["model"] == m)["per_subject"].get(s) for m in models)]
                                        for s in sorted({s for r in results for s in r["per_subject"]})]),
        "", "![accuracy](bench_accuracy.png)", "", "![speed](bench_speed.png)", "",
    ]
    (out / "bench.md").write_text("\n".join(md), encoding="utf-8")
    return paths + [out / "bench.md"]
