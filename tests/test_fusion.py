"""Fusion functions: rrf, convex and dbsf on hand-computed cases."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from zhiku.engine.fusion import FUSIONS, convex, dbsf, rrf

DENSE = [("a", 0.9), ("b", 0.8), ("c", 0.1)]
SPARSE = [("c", 12.0), ("a", 6.0), ("d", 0.0)]


def test_rrf_matches_hand_computation() -> None:
    fused = dict(rrf(DENSE, SPARSE, limit=10, k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["d"] == pytest.approx(1 / 63)
    assert [pid for pid, _ in rrf(DENSE, SPARSE, limit=2)] == ["a", "c"]


def test_convex_minmax_and_alpha_extremes() -> None:
    fused = dict(convex(DENSE, SPARSE, limit=10, alpha=0.5))
    assert fused["a"] == pytest.approx(0.5 * 1.0 + 0.5 * 0.5)
    assert fused["c"] == pytest.approx(0.5 * 0.0 + 0.5 * 1.0)
    assert fused["d"] == pytest.approx(0.0)
    assert [p for p, _ in convex(DENSE, SPARSE, 3, alpha=1.0)] == ["a", "b", "c"]
    assert [p for p, _ in convex(DENSE, SPARSE, 1, alpha=0.0)] == ["c"]


def test_convex_max_normalisation_keeps_a_flat_leg_flat() -> None:
    # Dense scores barely differ (a model that cannot tell them apart): min-max
    # would spread them over [0, 1]; dividing by the best keeps them within 3 %.
    flat = [("a", 0.62), ("b", 0.61), ("c", 0.60)]
    fused = dict(convex(flat, SPARSE, limit=10, alpha=0.5, norm="max"))
    assert fused["a"] == pytest.approx(0.5 * 1.0 + 0.5 * 6.0 / 12.0)
    assert fused["c"] == pytest.approx(0.5 * 0.60 / 0.62 + 0.5 * 1.0)
    assert fused["d"] == pytest.approx(0.0)
    assert [p for p, _ in convex(flat, SPARSE, 1, alpha=0.5, norm="max")] == ["c"]
    assert [p for p, _ in convex(flat, SPARSE, 1, alpha=0.5)] == ["a"]


def test_dbsf_clips_to_three_sigma() -> None:
    fused = dict(dbsf(DENSE, SPARSE, limit=10))
    assert all(0.0 <= s <= 2.0 for s in fused.values())
    assert max(fused, key=fused.get) in {"a", "c"}


def test_one_empty_leg_keeps_the_other_order() -> None:
    for fuse in FUSIONS.values():
        assert [p for p, _ in fuse(DENSE, [], 3)] == ["a", "b", "c"]
        assert fuse([], [], 3) == []


ranked = st.lists(
    st.tuples(st.sampled_from("abcdefgh"), st.floats(-5, 5, allow_nan=False)), max_size=8, unique_by=lambda x: x[0]
).map(lambda xs: sorted(xs, key=lambda x: -x[1]))


@given(ranked, ranked, st.integers(1, 10))
def test_fusions_return_unique_sorted_limited(d, s, limit) -> None:  # type: ignore[no-untyped-def]
    for fuse in FUSIONS.values():
        out = fuse(d, s, limit)
        ids = [p for p, _ in out]
        assert len(ids) == len(set(ids)) <= limit
        assert [x for _, x in out] == sorted((x for _, x in out), reverse=True)
        assert set(ids) <= {p for p, _ in d} | {p for p, _ in s}
