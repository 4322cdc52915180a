"""Answer-quality benchmark for `ask` on squad-dev with the default local model.

Answerable questions come from articles in the collection; unanswerable ones
from articles left out of it. Reports EM and F1 (official SQuAD normalisation),
citation precision (a cited chunk contains a gold answer), refusal rates, time
to first token and total time. Citation precision is reported twice: on the
packed text the model read (strict: the answer had to be in front of it) and
on the whole chunk the citation points to. `--gate-only` skips the model and shows how the
retrieval gate separates the two groups (to calibrate `min_coverage`);
`--rewrite-eval` measures multi-query / HyDE retrieval with the eval metrics.

Usefulness (issue 14), scored by `zhiku.eval.answers.outcome` as `zhiku eval
answers` does: answerable questions are correct (the answer holds a gold
string after NFKC, lower case, no punctuation, and cites a gold passage),
wrong, or refused; unanswerable ones are refused or not. `--calibrate N`
writes the quote scorer's inputs for N + N calibration questions (never the
benchmark's, no model calls) and `--fit FILES` fits it (engine/llm/rules.py).
With `--span` it also records every span candidate's features and the
model's pick (one prompt evaluation per question), and `--fit` then fits the
span ranker and the span scorer on half the questions and reports answered,
right and wrong on the other half per threshold.

    python bench/answer_quality.py --n 200 --unanswerable 50
    python bench/answer_quality.py --data ../shared/data/retrieval/cmrc-trial --held-articles 30
    python bench/answer_quality.py --calibrate 150 && python bench/answer_quality.py --fit bench/results/answer_quality.calibration.jsonl
    python bench/answer_quality.py --gate-only --n 500 --unanswerable 500
    python bench/answer_quality.py --calibrate 250 --span && python bench/answer_quality.py --fit bench/results/answer_quality.calibration.jsonl

CMRC articles hold about 4 questions each, so 30 held-out articles give the
50 unanswerable questions (SQuAD's 3 hold hundreds).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "data" / "retrieval" / "squad-dev"
RESULTS = ROOT / "bench" / "results"
# Calibration records span candidates for questions the default learned gate passes.
SPAN_CALIBRATION_GATE = 0.4


def split(dataset, n_answerable: int, n_unanswerable: int, seed: int, held_articles: int):  # type: ignore[no-untyped-def]
    """Leave whole articles out; draw answerable questions from the rest, unanswerable from them."""
    rng = random.Random(seed)
    titles = sorted({doc["title"] for doc in dataset.corpus.values()})
    held = set(rng.sample(titles, held_articles))
    kept = {i: d for i, d in dataset.corpus.items() if d["title"] not in held}
    def article(qid: str) -> str:
        return dataset.corpus[next(iter(dataset.qrels[qid]))]["title"]
    qids = sorted(
        q for q in dataset.queries if q in dataset.qrels and dataset.answers.get(q) and dataset.queries[q].strip()
    )
    inside = [q for q in qids if article(q) not in held]
    outside = [q for q in qids if article(q) in held]
    answerable = rng.sample(inside, min(n_answerable, len(inside)))
    unanswerable = rng.sample(outside, min(n_unanswerable, len(outside)))
    reduced = replace(dataset, name=f"{dataset.name}-minus{held_articles}s{seed}", corpus=kept)
    return reduced, answerable, unanswerable, sorted(held)


def contains_answer(text: str, gold: list[str]) -> bool:
    """A chunk contains a gold answer (after SQuAD normalisation)."""
    from zhiku.eval.answers import normalize_answer

    body = normalize_answer(text)
    return any(normalize_answer(g) and normalize_answer(g) in body for g in gold)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank), 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def interleave(answerable: list[str], unanswerable: list[str]) -> list[str]:
    """Both groups spread evenly through the run, so a cut-short run still measures both."""
    total = len(answerable) + len(unanswerable)
    keyed = [(i / max(1, len(answerable)), 0, q) for i, q in enumerate(answerable)]
    keyed += [((i + 0.5) / max(1, len(unanswerable)), 1, q) for i, q in enumerate(unanswerable)]
    return [q for _, _, q in sorted(keyed)][:total]


def run_ask(service, dataset, answerable, unanswerable, log, rows_path: Path | None = None) -> dict:  # type: ignore[no-untyped-def]
    """Ask every question through the shipped chain; return per-question rows and the summary.

    Rows are scored by `zhiku.eval.answers` (the same functions `zhiku eval
    answers` uses), plus what only a benchmark needs (packed-text citation
    checks, prompt tokens, CPU time to first token).
    """
    from zhiku.eval.answerers import AskAnswerer
    from zhiku.eval.answers import exact_match, f1_score, outcome

    bot = AskAnswerer(service)
    rows = []
    if rows_path is not None:
        rows_path.parent.mkdir(parents=True, exist_ok=True)
        rows_path.write_text("")
    for i, qid in enumerate(interleave(answerable, unanswerable)):
        gold = dataset.answers[qid]
        cpu_start = time.process_time()
        result = bot.answer(dataset.queries[qid])
        answer = bot.last
        cited = {c.n for c in answer.citations}
        relevant = list(dataset.qrels.get(qid, {}))
        row = {
            "qid": qid,
            "answerable": qid in answerable,
            "question": dataset.queries[qid],
            "gold": gold,
            "answer": answer.text,
            "mode": answer.mode,
            "refused": answer.refused,
            "reason": answer.refusal_reason.value if answer.refusal_reason else None,
            "outcome": outcome(result.text, result.refused, result.citations, gold, relevant),
            "em": exact_match(result.text, gold),
            "f1": f1_score(result.text, gold),
            # The packed text the model read, and the whole chunk the citation points to.
            "cited_ok": [contains_answer(s.text, gold) for s in answer.sources if s.n in cited],
            "cited_chunk_ok": [contains_answer(s.hit.text, gold) for s in answer.sources if s.n in cited],
            "cited_gold_doc": [s.hit.doc_id in relevant for s in answer.sources if s.n in cited],
            "ttft_s": result.ttft_s,
            # CPU seconds this process spent (all threads): a quiet-machine estimate.
            "cpu_s": time.process_time() - cpu_start,
            "total_s": result.total_s,
            "sources": len(answer.sources),
            "timings": answer.timings,
            "prompt_tokens": sum(service.generator.count_tokens(s.text) for s in answer.sources),
        }
        rows.append(row)
        if rows_path is not None:
            with rows_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        log(f"{i + 1}/{len(answerable) + len(unanswerable)} {'A' if row['answerable'] else 'U'} "
            f"{row['outcome'] if row['answerable'] else row['mode']} reason={row['reason']} "
            f"ttft={result.ttft_s or 0:.2f}s | {answer.text[:80]!r}")
    return {"rows": rows, "summary": summarize(rows)}


def summarize(rows: list[dict]) -> dict:
    """EM/F1 over answerable questions, citation precision, refusals, latency."""
    from zhiku.eval.answers import contains_gold

    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    cites = [ok for r in ans if not r["refused"] for ok in r["cited_ok"]]
    chunk_cites = [ok for r in ans if not r["refused"] for ok in r.get("cited_chunk_ok", [])]
    ttft = [r["ttft_s"] for r in rows if r["ttft_s"] is not None and r["sources"] >= 5]
    ttft_all = [r["ttft_s"] for r in rows if r["ttft_s"] is not None]
    cited_docs = [ok for r in rows if not r["refused"] for ok in r.get("cited_gold_doc", [])]

    def share(items: list[dict], key: str, value: object) -> float:
        return statistics.fmean(r.get(key) == value for r in items) if items else 0.0

    return {
        "answerable": len(ans),
        "unanswerable": len(una),
        # The usefulness metric (issue 14): answerable questions correct / wrong / refused.
        "correct": share(ans, "outcome", "correct"),
        "wrong": share(ans, "outcome", "wrong"),
        "refused": share(ans, "outcome", "refused"),
        # `wrong` is strict: it also counts answers that hold a gold string but cite
        # another passage. The issue's wording ("answered, but without a gold answer
        # string") counts only the first part:
        "wrong_without_gold": statistics.fmean(
            r["outcome"] == "wrong" and not contains_gold(r["answer"], r["gold"]) for r in ans) if ans else 0.0,
        "gold_from_other_passage": statistics.fmean(
            r["outcome"] == "wrong" and contains_gold(r["answer"], r["gold"]) for r in ans) if ans else 0.0,
        "quoted_answerable": share(ans, "mode", "quote"),
        "quoted_unanswerable": share(una, "mode", "quote"),
        "citation_precision_gold_doc": statistics.fmean(cited_docs) if cited_docs else 0.0,
        "ttft_p50_s": statistics.median(ttft_all) if ttft_all else None,
        "prompt_tokens_p50": statistics.median([r["prompt_tokens"] for r in rows if r["ttft_s"] is not None] or [0]),
        "em": statistics.fmean(r["em"] for r in ans) if ans else 0.0,
        "f1": statistics.fmean(r["f1"] for r in ans) if ans else 0.0,
        "em_answered": statistics.fmean([r["em"] for r in ans if not r["refused"]] or [0.0]),
        "f1_answered": statistics.fmean([r["f1"] for r in ans if not r["refused"]] or [0.0]),
        "citation_precision": statistics.fmean(cites) if cites else 0.0,
        "citations": len(cites),
        "citation_precision_chunk": statistics.fmean(chunk_cites) if chunk_cites else 0.0,
        "refusal_reasons_answerable": dict(Counter(r["reason"] for r in ans if r["refused"])),
        "refusal_rate_unanswerable": statistics.fmean(r["refused"] for r in una) if una else 0.0,
        "false_refusal_rate_answerable": statistics.fmean(r["refused"] for r in ans) if ans else 0.0,
        "ttft_p50_s_5chunks": statistics.median(ttft) if ttft else None,
        "ttft_p90_s_5chunks": pct(ttft, 90) if ttft else None,
        "ttft_n": len(ttft),
        "cpu_p50_s": statistics.median([r["cpu_s"] for r in rows] or [0.0]),
        "total_p50_s": statistics.median(r["total_s"] for r in rows) if rows else None,
        "total_p90_s": pct([r["total_s"] for r in rows], 90),
    }


def gate_stats(kb, service, dataset, answerable, unanswerable) -> dict:  # type: ignore[no-untyped-def]
    """Best question coverage among the packed sources, per group (no model calls)."""
    from zhiku.engine.llm.citations import content_tokens, coverage

    chain = service._chain()
    out: dict[str, list[float]] = {"answerable": [], "unanswerable": []}
    for group, qids in (("answerable", answerable), ("unanswerable", unanswerable)):
        for qid in qids:
            q = dataset.queries[qid]
            hits = kb.search(q, top_k=chain.settings.candidates)
            sources = chain._pack(hits, chain.settings.top_k, q)
            needles = content_tokens(q)
            out[group].append(max((coverage(needles, s.text) for s in sources), default=0.0))
    table = {}
    for threshold in [0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8]:
        table[threshold] = {
            "answerable_refused": statistics.fmean(v < threshold for v in out["answerable"]),
            "unanswerable_refused": statistics.fmean(v < threshold for v in out["unanswerable"]),
        }
    return {"thresholds": table, "answerable_median": statistics.median(out["answerable"]),
            "unanswerable_median": statistics.median(out["unanswerable"])}


def calibration_split(dataset, answerable, unanswerable, held, n: int, seed: int):  # type: ignore[no-untyped-def]
    """Questions for fitting the quote scorer: never the benchmark's (answerable from kept
    articles, unanswerable from held-out ones, both outside the benchmark sample)."""
    rng = random.Random(seed + 1)
    taken = set(answerable) | set(unanswerable)
    def article(qid: str) -> str:
        return dataset.corpus[next(iter(dataset.qrels[qid]))]["title"]
    qids = sorted(
        q for q in dataset.queries
        if q in dataset.qrels and dataset.answers.get(q) and dataset.queries[q].strip() and q not in taken
    )
    inside = [q for q in qids if article(q) not in held]
    outside = [q for q in qids if article(q) in held]
    return rng.sample(inside, min(n, len(inside))), rng.sample(outside, min(n, len(outside)))


def calibrate(service, dataset, answerable, unanswerable, log, span: bool = False) -> list[dict]:  # type: ignore[no-untyped-def]
    """Gate and quote-scorer inputs and labels per calibration question, without the model.

    `gate_label`: the packed sources answer the question (an answerable
    question whose gold passage is packed and holds a gold string).
    `label` (quote): the quoted sentence holds a gold string and comes from a
    gold passage. Unanswerable questions are negatives for both. `gate` is
    the fixed gates' verdict, for comparison.
    """
    from zhiku.engine.llm.rules import gate, gate_confidence, gate_features, span_features
    from zhiku.engine.llm.span import candidates, choose
    from zhiku.engine.llm.templates import detect_language
    from zhiku.eval.answers import contains_gold

    chain = service._chain()
    s = chain.settings.model_copy(update={"gate": "fixed"})
    rows = []
    for group, qids in (("answerable", answerable), ("unanswerable", unanswerable)):
        for qid in qids:
            q = dataset.queries[qid]
            lang = detect_language(q)
            hits = chain.retriever(q, top_k=s.candidates)
            sources = chain._pack(hits[: s.top_k * 2], s.top_k, q)
            if not sources:
                continue
            ev = chain.evidence(q, lang, hits, sources)
            reason = gate(ev, s)
            sentence, features = chain.quote_candidate(ev)
            gold, relevant = dataset.answers[qid], dataset.qrels.get(qid, {})
            good = group == "answerable" and contains_gold(sentence, gold) and sources[0].hit.doc_id in relevant
            packed = group == "answerable" and any(
                src.hit.doc_id in relevant and contains_gold(src.hit.text, gold) for src in sources
            )
            row = {"qid": qid, "group": group, "gate": reason.value if reason else None,
                   "features": features, "gate_features": gate_features(ev), "label": good, "gate_label": packed}
            if span and gate_confidence(ev) >= SPAN_CALIBRATION_GATE:
                spans = candidates(q, sources, lang, chain.similarity)
                choice = choose(service.generator, q, spans, lang) if spans else None
                if choice is not None:
                    def answers(sp) -> bool:  # type: ignore[no-untyped-def]
                        return group == "answerable" and contains_gold(sp.text, gold) and sp.source.hit.doc_id in relevant
                    row["span"] = {
                        "candidates": [{**sp.features, "label": answers(sp)} for sp in spans],
                        "model_rank": choice.rank, "model_label": answers(spans[choice.rank]),
                        "gate": gate_confidence(ev), "features": span_features(spans, gate_confidence(ev), choice.rank),
                        "label": answers(spans[0]),
                    }
            rows.append(row)
        log(f"calibrated {group}: {len(qids)}")
    return rows


def fit(rows: list[dict], seed: int, min_gate: float = 0.5) -> dict:
    """Fit the learned gate and the quote scorer on half the rows each; report on the other half.

    The gate is fitted on every row; the quote scorer on the rows the fitted
    gate passes at `min_gate` (quotes follow it).
    """
    from zhiku.engine.llm.rules import GATE_FEATURES, LEXICAL_FEATURES, QUOTE_WEIGHTS, fit_logistic, logistic

    rows = list(rows)
    random.Random(seed).shuffle(rows)
    half = len(rows) // 2
    gate_names = list(GATE_FEATURES)
    gate_w = fit_logistic([r["gate_features"] for r in rows[:half]], [r["gate_label"] for r in rows[:half]], gate_names)
    gate_all = fit_logistic([r["gate_features"] for r in rows], [r["gate_label"] for r in rows], gate_names)
    lexical = fit_logistic([r["gate_features"] for r in rows], [r["gate_label"] for r in rows], list(LEXICAL_FEATURES))
    lexical_half = fit_logistic(
        [r["gate_features"] for r in rows[:half]], [r["gate_label"] for r in rows[:half]], list(LEXICAL_FEATURES)
    )
    gates = {}
    for threshold in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        for name, part in (("fit", rows[:half]), ("check", rows[half:])):
          for kind, w in (("", gate_w), ("lexical ", lexical_half)):
            passed = [r for r in part if logistic({k: v for k, v in r["gate_features"].items() if k in w}, w) >= threshold]
            ans = [r for r in part if r["group"] == "answerable"]
            una = [r for r in part if r["group"] == "unanswerable"]
            gates[f"{kind}{threshold}/{name}"] = {
                "answerable_passed": sum(r["group"] == "answerable" for r in passed) / max(1, len(ans)),
                "answerable_packed_passed": sum(r["gate_label"] for r in passed) / max(1, sum(r["gate_label"] for r in part)),
                "unanswerable_passed": sum(r["group"] == "unanswerable" for r in passed) / max(1, len(una)),
            }
    for name, part in (("fit", rows[:half]), ("check", rows[half:])):
        ans = [r for r in part if r["group"] == "answerable"]
        una = [r for r in part if r["group"] == "unanswerable"]
        gates[f"fixed/{name}"] = {
            "answerable_passed": sum(r["gate"] is None for r in ans) / max(1, len(ans)),
            "unanswerable_passed": sum(r["gate"] is None for r in una) / max(1, len(una)),
        }
    passing = [r for r in rows if logistic(r["gate_features"], gate_all) >= min_gate]
    names = list(QUOTE_WEIGHTS["en"])
    q_half = len(passing) // 2
    fit_rows, check_rows = passing[:q_half], passing[q_half:]
    weights = fit_logistic([r["features"] for r in fit_rows], [r["label"] for r in fit_rows], names)
    table = {}
    for threshold in (0.5, 0.6, 0.7, 0.8, 0.9):
        for name, part in (("fit", fit_rows), ("check", check_rows)):
            quoted = [r for r in part if logistic(r["features"], weights) >= threshold]
            table[f"{threshold}/{name}"] = {
                "quoted": len(quoted),
                "of": len(part),
                "precision": statistics.fmean(r["label"] for r in quoted) if quoted else None,
                "unanswerable_quoted": sum(r["group"] == "unanswerable" for r in quoted),
                "unanswerable": sum(r["group"] == "unanswerable" for r in part),
            }
    final = fit_logistic([r["features"] for r in passing], [r["label"] for r in passing], names)
    spans = fit_spans(rows, seed)
    return {"span": spans,"gate_weights_fit_half": gate_w, "gate_weights_all": gate_all, "lexical_gate_weights_all": lexical, "gate_table": gates,
            "quote_weights_fit_half": weights, "quote_weights_all": final, "quote_table": table,
            "quote_base_rate": statistics.fmean(r["label"] for r in passing) if passing else None}


def _source_rank(features: dict) -> int:
    """A candidate's source rank among the span sources (0, 1, or 2 and beyond), from its features."""
    return 0 if features.get("src0") else 1 if features.get("src1") else 2


def fit_spans(rows: list[dict], seed: int) -> dict:
    """Fit the span ranker, then the span scorer, on half the questions; report on the other half.

    The ranker is fitted over every candidate sentence (label: it holds a
    gold answer and comes from a gold passage); the scorer over the ranker's
    best candidate per question (unanswerable questions are negatives), with
    the ranker refitted, so its inputs are what the chain computes.
    """
    from zhiku.engine.llm.rules import (
        SPAN_FEATURES, SPAN_QUOTE_FEATURES, SPAN_RANK_FEATURES, fit_logistic, logistic, span_features, span_quote_features,
    )

    every = list(rows)
    random.Random(seed).shuffle(every)
    half_every = len(every) // 2
    parts = {"fit": every[:half_every], "check": every[half_every:]}
    rows = [r for r in every if r.get("span", {}).get("candidates")]
    if not rows:
        return {}
    for r in rows:  # the ranker's intercept (span.candidates adds it at run time)
        for c in r["span"]["candidates"]:
            c["bias"] = 1.0
    half = sum(1 for r in parts["fit"] if r.get("span", {}).get("candidates"))

    def ranker(part: list[dict]) -> dict[str, float]:
        cands = [c for r in part for c in r["span"]["candidates"]]
        return fit_logistic(cands, [c["label"] for c in cands], list(SPAN_RANK_FEATURES), l2=1.0)

    def scorer_inputs(r: dict, w: dict[str, float]) -> tuple[dict[str, float], bool, dict[str, float], bool]:
        """The answer scorer's and the quote scorer's inputs and labels, under ranker weights `w`."""
        ranked = sorted((SimpleNamespace(score=logistic(c, w), features=c, index=i)
                         for i, c in enumerate(r["span"]["candidates"])), key=lambda s: -s.score)
        # The model's pick is a candidate (recorded in the shipped ranker's order).
        pick = r["span"]["model_rank"]
        model_rank = next((k for k, s in enumerate(ranked) if s.index == pick), None)
        # The partner: the next best sentence of the best one's source (span.partner_index).
        source = [_source_rank(s.features) for s in ranked]
        partner = next((k for k in range(1, len(ranked)) if source[k] == source[0]), None)
        pair = [ranked[0]] + ([ranked[partner]] if partner is not None else [])
        return (span_features(ranked, r["span"]["gate"], model_rank),
                bool(ranked[0].features["label"]),
                span_quote_features(ranked, partner, r["span"]["gate"], model_rank),
                any(s.features["label"] for s in pair))

    rank_w = ranker(rows[:half])
    fit_in = [scorer_inputs(r, rank_w) for r in rows[:half]]
    scorer_w = fit_logistic([x[0] for x in fit_in], [x[1] for x in fit_in], list(SPAN_FEATURES), l2=1.0)
    quote_w = fit_logistic([x[2] for x in fit_in], [x[3] for x in fit_in], list(SPAN_QUOTE_FEATURES), l2=1.0)
    table = {}
    for threshold, quote_threshold in [(t, None) for t in (0.5, 0.55, 0.6, 0.65, 0.7, 0.8)] + [
        (t, q) for t in (0.6, 0.65, 0.7, 0.75) for q in (0.6, 0.65, 0.7, 0.75, 0.8)
    ]:
        for name, part in parts.items():
            judged = [(r, *scorer_inputs(r, rank_w)) for r in part if r.get("span", {}).get("candidates")]
            kept, quoted = [], []
            for r, f, y, fq, yq in judged:
                if logistic(f, scorer_w) >= threshold:
                    kept.append((r, y))
                elif quote_threshold is not None and logistic(fq, quote_w) >= quote_threshold:
                    quoted.append((r, yq))
            given = kept + quoted
            answerable = sum(r["group"] == "answerable" for r in part)
            unanswerable = len(part) - answerable
            table[f"{threshold}/{quote_threshold}/{name}"] = {
                "answered": len(kept), "quoted": len(quoted), "of": len(part),
                "right_of_answerable": round(sum(y for _, y in given) / max(1, answerable), 3),
                "right_quoted_of_answerable": round(sum(y for _, y in quoted) / max(1, answerable), 3),
                "wrong_of_answerable": round(sum(not y and r["group"] == "answerable" for r, y in given) / max(1, answerable), 3),
                "unanswerable_answered": round(sum(r["group"] == "unanswerable" for r, _ in given) / max(1, unanswerable), 3),
            }
    rank_all = ranker(rows)
    all_in = [scorer_inputs(r, rank_all) for r in rows]
    answerable_rows = [r for r in rows if r["group"] == "answerable"]
    return {
        "rank_weights_fit_half": rank_w,
        "rank_weights_all": rank_all,
        "weights_fit_half": scorer_w,
        "weights_all": fit_logistic([x[0] for x in all_in], [x[1] for x in all_in], list(SPAN_FEATURES), l2=1.0),
        "quote_weights_fit_half": quote_w,
        "quote_weights_all": fit_logistic([x[2] for x in all_in], [x[3] for x in all_in], list(SPAN_QUOTE_FEATURES), l2=1.0),
        "table": table,
        "ranked_first_right": statistics.fmean(r["span"]["label"] for r in answerable_rows) if answerable_rows else None,
        "model_pick_right": statistics.fmean(r["span"]["model_label"] for r in answerable_rows) if answerable_rows else None,
        "any_candidate_right": statistics.fmean(
            any(c["label"] for c in r["span"]["candidates"]) for r in answerable_rows) if answerable_rows else None,
    }


def rewrite_eval(kb, service, dataset, qids, k: int = 5) -> dict:  # type: ignore[no-untyped-def]
    """recall@k / mrr@k of plain, multi-query and HyDE retrieval (eval.metrics)."""
    from zhiku.engine.llm.query_rewrite import QUERY_REWRITERS
    from zhiku.eval.metrics import dedupe, evaluate_run

    out = {}
    for name, wrap in QUERY_REWRITERS.items():
        retriever = wrap(service.model, kb.search, 3)
        start = time.perf_counter()
        run = {q: dedupe(h.doc_id for h in retriever(dataset.queries[q], top_k=k)) for q in qids}
        scores = evaluate_run(run, {q: dataset.qrels[q] for q in qids}, ks=(1, k))
        scores["seconds_per_query"] = (time.perf_counter() - start) / len(qids)
        out[name] = scores
        print(name, json.dumps(scores), file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ask answer quality on squad-dev")
    parser.add_argument("--data", type=Path, default=SQUAD)
    parser.add_argument("--n", type=int, default=200, help="answerable questions")
    parser.add_argument("--unanswerable", type=int, default=50)
    parser.add_argument("--held-articles", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--query-rewrite", default="none", choices=["none", "multi-query", "hyde"])
    parser.add_argument("--min-coverage", type=float, default=None)
    parser.add_argument("--context-tokens", type=int, default=None)
    parser.add_argument("--first-source-tokens", type=int, default=None)
    parser.add_argument("--source-tokens", type=int, default=None)
    parser.add_argument("--min-citation-relevance", type=float, default=None)
    parser.add_argument("--answer-tokens", type=int, default=None)
    parser.add_argument("--answer-style", default=None, choices=["generate", "span"])
    parser.add_argument("--gate", default=None, choices=["learned", "fixed"])
    parser.add_argument("--min-gate-confidence", type=float, default=None)
    parser.add_argument("--gate-only", action="store_true")
    parser.add_argument("--calibrate", type=int, default=0, metavar="N",
                        help="write quote-scorer features for N+N calibration questions (no model) and exit")
    parser.add_argument("--span", action="store_true", help="with --calibrate: also record the model's span choice")
    parser.add_argument("--fit", type=Path, nargs="+", default=None, help="fit the quote scorer on calibration files")
    parser.add_argument("--summarize-rows", type=Path, default=None, help="summarize a (partial) rows file and exit")
    parser.add_argument("--rewrite-eval", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "answer_quality.json")
    parser.add_argument("--cache", type=Path, default=RESULTS / "cache" / "answer-quality",
                        help="where the indexes are kept (one process may open one at a time)")
    args = parser.parse_args(argv)
    if args.fit:
        rows = [json.loads(l) for path in args.fit for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
        print(json.dumps(fit(rows, args.seed), indent=2))
        return 0
    if args.summarize_rows is not None:
        rows = [json.loads(l) for l in args.summarize_rows.read_text(encoding="utf-8").splitlines() if l.strip()]
        print(json.dumps(summarize(rows), indent=2))
        return 0

    from zhiku.engine.settings import AskSettings
    from zhiku.engine.llm import build_generator
    from zhiku.engine.llm.abilities import build_llm
    from zhiku.engine.settings import load_settings
    from zhiku.eval.beir import load_beir
    from zhiku.eval.retrieval import open_index

    dataset = load_beir(args.data)
    reduced, answerable, unanswerable, held = split(dataset, args.n, args.unanswerable, args.seed, args.held_articles)
    settings = load_settings(embed__threads=1, llm__threads=args.threads)
    kb = open_index(reduced, args.cache, settings)
    ask = AskSettings(top_k=args.top_k, query_rewrite=args.query_rewrite)
    chosen = {
        "answer_tokens": args.answer_tokens,
        "min_coverage": args.min_coverage,
        "context_tokens": args.context_tokens,
        "first_source_tokens": args.first_source_tokens,
        "source_tokens": args.source_tokens,
        "min_citation_relevance": args.min_citation_relevance,
        "answer_style": args.answer_style,
        "gate": args.gate,
        "min_gate_confidence": args.min_gate_confidence,
    }
    ask = ask.model_copy(update={k: v for k, v in chosen.items() if v is not None})
    service = build_llm(settings.model_copy(update={"ask": ask}), build_generator(settings.llm), kb)
    if not (args.gate_only or args.rewrite_eval or (args.calibrate and not args.span)):
        service.generator.warm_up()
    meta = {"held_out_articles": held, "collection_docs": len(reduced.corpus), "settings": ask.model_dump(mode="json"),
            "model": service.generator.model_id, "threads": args.threads}
    if args.calibrate:
        log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
        cal_a, cal_u = calibration_split(dataset, answerable, unanswerable, held, args.calibrate, args.seed)
        rows = calibrate(service, dataset, cal_a, cal_u, log, span=args.span)
        path = args.out.with_suffix(".calibration.jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(path)
        kb.close()
        return 0
    if args.gate_only:
        result = {"meta": meta, "gate": gate_stats(kb, service, dataset, answerable, unanswerable)}
    elif args.rewrite_eval:
        result = {"meta": meta, "rewrite": rewrite_eval(kb, service, dataset, answerable)}
    else:
        service.ask("warm-up question about " + dataset.queries[answerable[0]])  # load weights and caches
        log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
        result = {"meta": meta, **run_ask(service, dataset, answerable, unanswerable, log, args.out.with_suffix(".rows.jsonl"))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    shown = result.get("summary") or result.get("gate") or result.get("rewrite")
    print(json.dumps({"meta": {k: v for k, v in meta.items() if k != "settings"}, "result": shown}, indent=2, ensure_ascii=False))
    kb.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
