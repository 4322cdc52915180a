"""Retrieval eval: index a BEIR corpus once, then score a grid of search configurations.

Each configuration (mode, fusion, alpha) runs every query through
`KnowledgeBase.search`, timing each call; results are written after every
configuration so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import fmean

from zhiku.engine.errors import InvalidRequest
from zhiku.engine.settings import Settings
from zhiku.eval.beir import BeirDataset
from zhiku.eval.metrics import dedupe, evaluate_run

Progress = Callable[[str, int], Callable[[int], None]]
"""`progress(label, total)` returns `advance(n)`; the CLI passes a rich bar."""

_BUILT_MARKER = "zhiku-eval-built.json"
_ADD_BATCH = 256


def no_progress(label: str, total: int) -> Callable[[int], None]:
    """A progress sink that shows nothing (library and test use)."""
    return lambda n: None


@dataclass(frozen=True)
class RetrievalConfig:
    """One point of the grid; fusion and alpha only matter for hybrid search."""

    mode: str
    fusion: str | None = None
    alpha: float | None = None

    @property
    def name(self) -> str:
        parts = [self.mode]
        if self.fusion:
            parts.append(self.fusion)
        if self.alpha is not None:
            parts.append(f"a{self.alpha:g}")
        return "-".join(parts)


def config_grid(
    modes: Sequence[str], fusions: Sequence[str], alphas: Sequence[float]
) -> list[RetrievalConfig]:
    """Expand modes x fusions x alphas; alpha only varies for convex fusion."""
    configs: list[RetrievalConfig] = []
    for mode in modes:
        if mode not in ("dense", "bm25", "hybrid"):
            raise InvalidRequest(f"unknown search mode {mode!r}")
        if mode != "hybrid":
            configs.append(RetrievalConfig(mode))
            continue
        for fusion in fusions:
            if fusion == "convex":
                configs.extend(RetrievalConfig(mode, fusion, float(a)) for a in alphas)
            else:
                configs.append(RetrievalConfig(mode, fusion))
    return configs


def _embed_key(settings: Settings) -> str:
    model = settings.embed.model or "default"
    return f"{settings.embed.backend}-{Path(model).name}".replace("/", "_")


def open_index(dataset: BeirDataset, cache_dir: Path, settings: Settings, progress: Progress = no_progress):
    """Open the cached collection for this corpus and embedder, building it the first time."""
    from zhiku.engine.kb import KnowledgeBase  # heavy: loads the store engine

    path = Path(cache_dir) / f"{dataset.name}-{dataset.fingerprint()}-{_embed_key(settings)}"
    marker = path / _BUILT_MARKER
    kb = KnowledgeBase(path, collection="beir", settings=settings)
    if marker.is_file():
        return kb
    ids = list(dataset.corpus)
    advance = progress(f"indexing {dataset.name}", len(ids))
    for start in range(0, len(ids), _ADD_BATCH):
        batch = ids[start : start + _ADD_BATCH]
        kb.add_texts(
            [dataset.corpus[i]["text"] for i in batch],
            ids=batch,
            metadatas=[{"title": dataset.corpus[i]["title"]} for i in batch],
        )
        advance(len(batch))
    kb.flush()
    marker.write_text(json.dumps({"documents": len(ids), "embed": _embed_key(settings)}))
    return kb


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _forget_query_vectors(kb) -> None:
    # The embedder caches recent query vectors; without clearing, every configuration
    # after the first would skip query embedding and look faster than it is.
    kb.embedder.clear_cache()


def judged_queries(dataset: BeirDataset) -> list[str]:
    """Queries with at least one judgement; unanswerable ones only matter to the answer eval."""
    return [qid for qid in dataset.queries if dataset.qrels.get(qid)]


def run_config(kb, dataset: BeirDataset, config: RetrievalConfig, ks: Sequence[int], advance) -> dict:
    """Search every query with one configuration; metrics plus latency in ms."""
    top_k = max(ks)
    run: dict[str, list[str]] = {}
    latencies: list[float] = []
    qids = judged_queries(dataset)
    _forget_query_vectors(kb)
    if qids:  # one untimed call, so lazy model loading and caches do not count as latency
        kb.search(dataset.queries[qids[0]], top_k=top_k, mode=config.mode, fusion=config.fusion, alpha=config.alpha)
    for qid in qids:
        text = dataset.queries[qid]
        start = time.perf_counter()
        hits = kb.search(text, top_k=top_k, mode=config.mode, fusion=config.fusion, alpha=config.alpha)
        latencies.append((time.perf_counter() - start) * 1000)
        run[qid] = dedupe(hit.doc_id for hit in hits)
        advance(1)
    return {
        "config": config.name,
        **asdict(config),
        "queries": len(run),
        "metrics": evaluate_run(run, dataset.qrels, ks),
        "latency_ms": {
            "mean": fmean(latencies),
            "p50": _percentile(latencies, 0.5),
            "p95": _percentile(latencies, 0.95),
        },
    }


def evaluate_retrieval(
    kb,
    dataset: BeirDataset,
    configs: Iterable[RetrievalConfig],
    ks: Sequence[int],
    state_file: Path | None = None,
    progress: Progress = no_progress,
) -> list[dict]:
    """Score each configuration, reusing results already in `state_file` for the same setup."""
    key = f"{dataset.name}:{dataset.fingerprint()}:{len(judged_queries(dataset))}:{','.join(map(str, ks))}"
    done: dict[str, dict] = {}
    if state_file is not None and state_file.is_file():
        saved = json.loads(state_file.read_text())
        if saved.get("key") == key:
            done = saved.get("results", {})
    results = []
    for config in configs:
        if config.name not in done:
            advance = progress(config.name, len(judged_queries(dataset)))
            done[config.name] = run_config(kb, dataset, config, ks, advance)
            if state_file is not None:
                state_file.write_text(json.dumps({"key": key, "results": done}))
        results.append(done[config.name])
    return results
