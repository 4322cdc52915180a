"""What both Qdrant backends share: name, input and manifest checks, filter conversion.

qdrant-edge and qdrant-client model filters with classes of the same names and
keyword arguments (`Filter(must=...)`, `FieldCondition(key=, match=, range=)`,
`MatchValue(value=)`, `MatchAny(any=)`), so one converter serves both: each
backend passes the namespace its classes live in.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from zhiku.engine.errors import ConfigError, InvalidRequest
from zhiku.engine.filters import Condition, Match, MatchAny, Range
from zhiku.engine.names import check_collection_name
from zhiku.engine.stores._layout import DenseLayout
from zhiku.engine.stores.base import DENSE, SPARSE
from zhiku.engine.types import Point, SparseVector

_MAX_TERM_ID = 2**32 - 1
# The rule lives in engine/names.py; both backends import it from here.
check_name = check_collection_name


def check_limit(limit: int) -> int:
    """Query limits are positive integers."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidRequest(f"limit must be a positive integer, got {limit!r}")
    return limit


def manifest_json(manifest: dict[str, Any]) -> str:
    """The manifest as JSON text; InvalidRequest for what JSON cannot hold."""
    if not isinstance(manifest, dict):
        raise InvalidRequest("a manifest must be a JSON object")
    try:
        return json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"manifest is not JSON-serialisable: {exc}") from None


def parse_manifest(text: str, where: str) -> dict[str, Any]:
    """A stored manifest; ConfigError naming where it lives if it is damaged."""
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"manifest of {where} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ConfigError(f"manifest of {where} is not a JSON object")
    return manifest


def check_dim(dim: int) -> int:
    """Collection dimensions are positive integers."""
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise InvalidRequest(f"collection dimension must be a positive integer, got {dim!r}")
    return dim


def point_id(raw: str) -> str:
    """The canonical UUID string for a point id (Qdrant answers in this form)."""
    try:
        return str(uuid.UUID(str(raw)))
    except ValueError:
        raise InvalidRequest(f"point id {raw!r} is not a UUID") from None


def dense_array(vector: np.ndarray | Sequence[float], dim: int | None) -> np.ndarray:
    """A finite 1-d float32 vector of the collection's dimension."""
    arr = np.asarray(vector, dtype=np.float32)
    if arr.ndim != 1 or (dim is not None and arr.shape[0] != dim):
        raise InvalidRequest(f"dense vector has shape {arr.shape}, collection wants ({dim},)")
    # Qdrant stores NaN without complaint and then ranks garbage; refuse it here.
    if not np.isfinite(arr).all():
        raise InvalidRequest("dense vector contains NaN or infinity")
    return arr


def sparse_lists(vector: SparseVector) -> tuple[list[int], list[float]]:
    """Checked (indices, values) of a sparse vector: same length, unique ids, finite."""
    indices = [int(i) for i in vector.indices]
    values = [float(v) for v in vector.values]
    if len(indices) != len(values):
        raise InvalidRequest("sparse vector has different numbers of indices and values")
    if len(set(indices)) != len(indices):
        raise InvalidRequest("sparse vector repeats a term id")
    if any(i < 0 or i > _MAX_TERM_ID for i in indices):
        raise InvalidRequest("sparse vector term ids must fit in uint32")
    if not all(math.isfinite(v) for v in values):
        raise InvalidRequest("sparse vector contains NaN or infinity")
    return indices, values


@dataclass(frozen=True, slots=True)
class FilterModels:
    """The filter classes of one client library."""

    Filter: Any
    FieldCondition: Any
    MatchValue: Any
    MatchAny: Any
    Range: Any


def to_filter(conditions: Sequence[Condition], models: FilterModels) -> Any | None:
    """All conditions must hold; None when there are none."""
    if not conditions:
        return None
    return models.Filter(must=[_condition(c, models) for c in conditions])


def require_filter(conditions: Sequence[Condition], models: FilterModels) -> Any:
    """A filter for deleting: never empty, since an empty one would match everything."""
    filt = to_filter(conditions, models)
    if filt is None:
        raise InvalidRequest("delete_where needs at least one condition")
    return filt


def _condition(cond: Condition, m: FilterModels) -> Any:
    if isinstance(cond, Match):
        return _match(cond.key, cond.value, m)
    if isinstance(cond, MatchAny):
        values = [_integral(v) for v in cond.values]
        if not values:
            raise InvalidRequest(f"filter {cond.key!r}: any-of needs at least one value")
        # Qdrant's MatchAny takes only all-keyword or all-integer lists.
        if all(isinstance(v, str) for v in values) or all(
            isinstance(v, int) and not isinstance(v, bool) for v in values
        ):
            return m.FieldCondition(key=cond.key, match=m.MatchAny(any=values))
        return m.Filter(should=[_match(cond.key, v, m) for v in values])
    if isinstance(cond, Range):
        bounds = {op: getattr(cond, op) for op in ("gt", "gte", "lt", "lte")}
        if all(b is None for b in bounds.values()):
            raise InvalidRequest(f"filter {cond.key!r}: range needs at least one bound")
        return m.FieldCondition(key=cond.key, range=m.Range(**bounds))
    raise InvalidRequest(f"unsupported filter condition {type(cond).__name__}")


def _match(key: str, value: Any, m: FilterModels) -> Any:
    value = _integral(value)
    if isinstance(value, float):
        # Qdrant matches keywords, integers and bools exactly; a fractional
        # number is matched as the closed range [v, v] instead.
        return m.FieldCondition(key=key, range=m.Range(gte=value, lte=value))
    return m.FieldCondition(key=key, match=m.MatchValue(value=value))


def _integral(value: Any) -> Any:
    """2001.0 -> 2001, so numbers parsed as floats still match integer payloads."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def record_point(record: Any, layout: DenseLayout | None = None) -> Point:
    """A stored record read back with its vectors (Edge or qdrant-client) as a Point.

    A dense vector stored in parts comes back whole (unit length).
    """
    vectors = record.vector or {}
    sparse = vectors.get(SPARSE)
    return Point(
        str(record.id),
        layout.join(vectors) if layout is not None and layout.split else np.asarray(vectors[DENSE], dtype=np.float32),
        SparseVector(tuple(sparse.indices), tuple(sparse.values)) if sparse else SparseVector((), ()),
        dict(record.payload or {}),
    )
