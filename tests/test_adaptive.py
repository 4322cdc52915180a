"""Table tests for the per-query convex options (engine/adaptive.py)."""

from __future__ import annotations

import pytest

from zhiku.engine.adaptive import IDENTIFIER_SCALE, convex_options
from zhiku.engine.query import analyse


@pytest.mark.parametrize(
    "query, alpha, norm",
    [
        ("who founded the city", 0.4, "minmax"),
        ("archive code QX000ZR", 0.4 * IDENTIFIER_SCALE, "minmax"),
        ("这座城市是谁建立的", 0.4, "max"),
        ("订单号14802999", 0.4 * IDENTIFIER_SCALE, "max"),
    ],
)
def test_convex_options_per_language_and_identifiers(query: str, alpha: float, norm: str) -> None:
    options = convex_options(0.4, analyse(query))
    assert options["alpha"] == pytest.approx(alpha)
    assert options["norm"] == norm
