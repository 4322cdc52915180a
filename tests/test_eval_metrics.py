"""Ranking metrics: hand-computed tables, properties, and agreement with pytrec_eval to 1e-6."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhiku.eval.metrics import dedupe, evaluate_run, map_at_k, mrr_at_k, ndcg_at_k, recall_at_k

QRELS = {"a": 1, "c": 2, "x": 0}


@pytest.mark.parametrize(
    ("fn", "ranked", "k", "expected"),
    [
        (recall_at_k, ["a", "b", "c"], 2, 0.5),
        (recall_at_k, ["a", "b", "c"], 3, 1.0),
        (recall_at_k, ["x", "b"], 2, 0.0),  # judged non-relevant is not relevant
        (mrr_at_k, ["b", "c", "a"], 10, 0.5),
        (mrr_at_k, ["b", "d", "a"], 2, 0.0),
        (map_at_k, ["a", "b", "c"], 3, (1 / 1 + 2 / 3) / 2),
        (map_at_k, ["a", "b", "c"], 1, 0.5),  # divided by all relevant, not retrieved ones
        (ndcg_at_k, ["c", "a"], 2, 1.0),
        (ndcg_at_k, ["a", "c"], 2, (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))),
        (ndcg_at_k, [], 5, 0.0),
    ],
)
def test_metric_table(fn, ranked, k, expected) -> None:
    assert fn(ranked, QRELS, k) == pytest.approx(expected, abs=1e-12)


def test_no_relevant_documents_scores_zero_not_nan() -> None:
    for fn in (ndcg_at_k, recall_at_k, mrr_at_k, map_at_k):
        assert fn(["a"], {"a": 0}, 5) == 0.0


def test_dedupe_keeps_best_rank() -> None:
    assert dedupe(["d2", "d1", "d2", "d3", "d1"]) == ["d2", "d1", "d3"]


def test_evaluate_run_counts_missing_queries_as_zero() -> None:
    result = evaluate_run({"q1": ["a"]}, {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"z": 0}}, ks=(1,))
    assert result["recall@1"] == 0.5  # q3 has nothing relevant, so it is not judged
    assert set(result) == {"ndcg@1", "recall@1", "mrr@1", "map@1"}


@settings(max_examples=80, deadline=None)
@given(
    ranked=st.lists(st.sampled_from("abcdefgh"), unique=True, max_size=8),
    rels=st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 3), max_size=8),
    k=st.integers(1, 10),
)
def test_metrics_are_bounded_and_perfect_ranking_scores_one(ranked, rels, k) -> None:
    for fn in (ndcg_at_k, recall_at_k, mrr_at_k, map_at_k):
        assert 0.0 <= fn(ranked, rels, k) <= 1.0 + 1e-12
    ideal = sorted((d for d, r in rels.items() if r > 0), key=lambda d: -rels[d])
    if ideal:
        assert ndcg_at_k(ideal, rels, k) == pytest.approx(1.0)
        assert mrr_at_k(ideal, rels, k) == 1.0


def _random_case(rng: random.Random) -> tuple[dict, dict]:
    qrels, run = {}, {}
    docs = [f"d{i}" for i in range(30)]
    for q in range(40):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 8))
        qrels[qid] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        retrieved = rng.sample(docs, rng.randint(0, 25))
        run[qid] = retrieved
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_pytrec_eval(seed: int) -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    qrels, run = _random_case(random.Random(seed))
    ks = (1, 3, 5, 10, 20)
    # pytrec_eval ranks by score; distinct descending scores keep our order.
    scored = {q: {d: float(len(docs) - i) for i, d in enumerate(docs)} for q, docs in run.items()}
    measures = {f"ndcg_cut.{','.join(map(str, ks))}", f"recall.{','.join(map(str, ks))}",
                f"map_cut.{','.join(map(str, ks))}"}
    reference = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(scored)
    for qid in qrels:
        if not any(r > 0 for r in qrels[qid].values()):
            continue
        got = reference.get(qid, {})
        for k in ks:
            assert ndcg_at_k(run[qid], qrels[qid], k) == pytest.approx(got.get(f"ndcg_cut_{k}", 0.0), abs=1e-6)
            assert recall_at_k(run[qid], qrels[qid], k) == pytest.approx(got.get(f"recall_{k}", 0.0), abs=1e-6)
            assert map_at_k(run[qid], qrels[qid], k) == pytest.approx(got.get(f"map_cut_{k}", 0.0), abs=1e-6)
            # MRR@k is trec's recip_rank on the run cut at k.
            cut = {qid: {d: s for d, s in scored[qid].items() if d in run[qid][:k]}}
            rr = pytrec_eval.RelevanceEvaluator({qid: qrels[qid]}, {"recip_rank"}).evaluate(cut)
            assert mrr_at_k(run[qid], qrels[qid], k) == pytest.approx(rr.get(qid, {}).get("recip_rank", 0.0), abs=1e-6)
