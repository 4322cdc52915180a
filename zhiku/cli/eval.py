"""`zhiku eval`: retrieval, answer and LLM benchmark evals with JSON, Markdown and PNG output."""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from zhiku.cli.common import console, make_settings, print_json
from zhiku.engine.errors import ZhikuError

app = typer.Typer(no_args_is_help=True, help="Measure retrieval, answers and LLMs; write reports.")

Data = Annotated[Path, typer.Option("--data", help="Dataset directory.")]
Limit = Annotated[Optional[int], typer.Option("--limit", help="At most N queries (per subject for benchmarks).")]


def _csv(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


@contextmanager
def _progress() -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """A rich progress display; `add(label, total)` returns `advance(n)`."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bars:

        def add(label: str, total: int) -> Callable[[int], None]:
            task_id = bars.add_task(label, total=total)
            return lambda n: bars.advance(task_id, n)

        yield add


@contextmanager
def _domain_errors() -> Iterator[None]:
    try:
        yield
    except ZhikuError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc


def _wrote(paths: list[Path]) -> None:
    for path in paths:
        console.print(f"wrote {path}")


@app.command()
def retrieval(
    data: Data,
    out: Annotated[Path, typer.Option(help="Where results, report and plots go.")] = Path("eval-out/retrieval"),
    limit: Limit = None,
    split: Annotated[str, typer.Option(help="qrels/<split>.tsv to score.")] = "test",
    modes: Annotated[str, typer.Option(help="Comma list of dense, bm25, hybrid.")] = "dense,bm25,hybrid",
    fusions: Annotated[str, typer.Option(help="Comma list of convex, rrf, dbsf (hybrid only).")] = "convex,rrf,dbsf",
    alphas: Annotated[str, typer.Option(help="Dense weights tried with convex fusion.")] = "0.2,0.4,0.6,0.8",
    k: Annotated[str, typer.Option("--k", help="Metric cut-offs.")] = "1,5,10",
    cache: Annotated[Optional[Path], typer.Option(help="Index cache (default <out>/index).")] = None,
    embed_backend: Annotated[Optional[str], typer.Option(help="Override the embedder backend.")] = None,
    embed_model: Annotated[Optional[str], typer.Option(help="Override the embedding model.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Also print results as JSON.")] = False,
) -> None:
    """nDCG, Recall, MRR and MAP at k for every search mode, fusion and alpha, with latency."""
    from zhiku.eval.beir import load_beir
    from zhiku.eval.report import retrieval_report
    from zhiku.eval.retrieval import config_grid, evaluate_retrieval, judged_queries, open_index

    settings = make_settings(None, embed__backend=embed_backend, embed__model=embed_model)
    with _domain_errors():
        ks = sorted({int(x) for x in _csv(k)})
        dataset = load_beir(data, split=split, limit=limit)
        configs = config_grid(_csv(modes), _csv(fusions), [float(a) for a in _csv(alphas)])
        out.mkdir(parents=True, exist_ok=True)
        with _progress() as progress:
            kb = open_index(dataset, cache or out / "index", settings, progress)
            try:
                results = evaluate_retrieval(kb, dataset, configs, ks, out / "retrieval.state.json", progress)
            finally:
                kb.close()
        meta = {
            "dataset": f"{dataset.name} ({split})", "queries": len(judged_queries(dataset)), "documents": len(dataset.corpus),
            "embedder": f"{settings.embed.backend} {settings.embed.model or '(default)'}",
            "machine": f"{platform.machine()} {platform.python_version()}",
        }
        _wrote(retrieval_report(out, results, meta))
    if as_json:
        print_json(results)


@app.command()
def answers(
    data: Data,
    out: Annotated[Path, typer.Option(help="Where results, report and plots go.")] = Path("eval-out/answers"),
    limit: Limit = None,
    answerer: Annotated[str, typer.Option(help="extractive (no LLM) or rag (configured LLM).")] = "extractive",
    judge: Annotated[str, typer.Option(help="Faithfulness judge: overlap or llm.")] = "overlap",
    top_k: Annotated[int, typer.Option("--top-k", help="Passages given to the answerer.")] = 3,
    mode: Annotated[Optional[str], typer.Option(help="Search mode for the answerer.")] = None,
    cache: Annotated[Optional[Path], typer.Option(help="Index cache (default <out>/index).")] = None,
    embed_backend: Annotated[Optional[str], typer.Option(help="Override the embedder backend.")] = None,
    llm_backend: Annotated[Optional[str], typer.Option(help="Override the LLM backend.")] = None,
    llm_model_path: Annotated[Optional[Path], typer.Option(help="Override the LLM model path.")] = None,
) -> None:
    """EM/F1, citation precision/recall, refusal rate and faithfulness on SQuAD-style data."""
    from zhiku.eval.answerers import build_answerer, llm_judge
    from zhiku.eval.answers import evaluate_answers, overlap_judge
    from zhiku.eval.beir import load_beir
    from zhiku.eval.report import answers_report
    from zhiku.eval.retrieval import open_index

    settings = make_settings(None, embed__backend=embed_backend, llm__backend=llm_backend, llm__model_path=llm_model_path)
    with _domain_errors():
        dataset = load_beir(data, limit=limit)
        out.mkdir(parents=True, exist_ok=True)
        with _progress() as progress:
            kb = open_index(dataset, cache or out / "index", settings, progress)
            try:
                bot = build_answerer(answerer, kb, top_k, mode)
                if judge == "llm":
                    from zhiku.engine.llm import build_generator

                    check = llm_judge(build_generator(settings.llm))
                else:
                    check = overlap_judge()
                result = evaluate_answers(dataset, bot, check, progress("answering", len(dataset.queries)))
            finally:
                kb.close()
        meta = {"dataset": dataset.name, "answerer": answerer, "judge": judge, "top_k": top_k,
                "llm": f"{settings.llm.backend} {settings.llm.model_path or ''}" if answerer == "rag" or judge == "llm" else "none"}
        _wrote(answers_report(out, result, meta))


@app.command()
def bench(
    task: Annotated[str, typer.Option(help="mmlu, ceval, cmmlu, agieval or gsm8k.")],
    data: Data,
    model: Annotated[str, typer.Option(help="Comma list of models: DIR, FILE.gguf, hf:..., llamacpp:FILE, fake.")],
    out: Annotated[Path, typer.Option(help="Where results, report and plots go.")] = Path("eval-out/bench"),
    limit: Limit = None,
    subjects: Annotated[Optional[str], typer.Option(help="Comma list of subjects (default all).")] = None,
    shots: Annotated[Optional[int], typer.Option(help="Solved examples per prompt (task default if unset).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Sample --limit items at random with this seed.")] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for the model.")] = 2,
    mc_mode: Annotated[str, typer.Option(help="Multiple choice by loglik (option log-likelihood) or generate.")] = "loglik",
) -> None:
    """Benchmark one or more models side by side (log-likelihood multiple choice; generation for GSM8K)."""
    from zhiku.eval.benchmarks import DEFAULT_SHOTS, get_task
    from zhiku.eval.benchmarks.base import pick
    from zhiku.eval.benchmarks.runner import load_items, run_benchmark
    from zhiku.eval.benchmarks.scoring import build_scorer
    from zhiku.eval.report import bench_report

    with _domain_errors():
        bench_task = get_task(task)
        n_shots = DEFAULT_SHOTS[task] if shots is None else shots
        # With a seed, sample from the whole subject; without, lm-eval's "first N".
        items = load_items(bench_task, data, _csv(subjects), n_shots, None if seed is not None else limit)
        if seed is not None:
            items = [i for s in dict.fromkeys(x.subject for x in items)
                     for i in pick([x for x in items if x.subject == s], limit, seed)]
        out.mkdir(parents=True, exist_ok=True)
        results = []
        with _progress() as progress:
            for spec in _csv(model):
                scorer = build_scorer(spec, threads=threads)
                advance = progress(spec, len(items))
                results.append(run_benchmark(bench_task, scorer, items, spec, out / "cache", advance, mc_mode))
        meta = {"task": task, "data": str(data), "shots": n_shots, "multiple choice": mc_mode, "limit per subject": limit, "seed": seed,
                "subjects": len({i.subject for i in items}), "threads": threads,
                "machine": f"{platform.machine()} {platform.python_version()}"}
        _wrote(bench_report(out, results, meta))
    for r in results:
        console.print(f"{r['model']}: accuracy {r['accuracy']:.4f} on {r['questions']} questions, {r['questions_per_s']:.2f} q/s")
