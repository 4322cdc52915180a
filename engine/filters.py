"""Search filters: a small neutral form that every vector store translates.

Users write filters as a dict: `{"lang": "en"}` (equality), `{"tag": ["a", "b"]}`
(any of), `{"year": {"gte": 2000, "lt": 2020}}` (range). Keys name user
metadata, except the reserved payload fields below, which are matched as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Union

from zhiku.engine.errors import InvalidRequest

RESERVED_FIELDS = frozenset({"doc_id", "chunk_id", "source", "title", "section", "content_hash"})
RANGE_OPS = frozenset({"gt", "gte", "lt", "lte"})
Scalar = Union[str, int, float, bool]


@dataclass(frozen=True, slots=True)
class Match:
    key: str
    value: Scalar


@dataclass(frozen=True, slots=True)
class MatchAny:
    key: str
    values: tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class Range:
    key: str
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None


Condition = Union[Match, MatchAny, Range]


def payload_key(key: str) -> str:
    """Where a user-facing filter key lives in the stored payload."""
    if key in RESERVED_FIELDS or key.startswith("meta."):
        return key
    return f"meta.{key}"


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def parse_filters(filters: Mapping[str, Any] | None) -> tuple[Condition, ...]:
    """Turn a user filter dict into conditions that must all hold."""
    if not filters:
        return ()
    if not isinstance(filters, Mapping):
        raise InvalidRequest("filters must be an object of field: condition")
    conditions: list[Condition] = []
    for key, spec in filters.items():
        if not isinstance(key, str) or not key or len(key) > 200:
            raise InvalidRequest(f"bad filter field name: {key!r}")
        field_key = payload_key(key)
        if _is_scalar(spec):
            conditions.append(Match(field_key, spec))
        elif isinstance(spec, (list, tuple)):
            if not spec or not all(_is_scalar(v) for v in spec):
                raise InvalidRequest(f"filter {key!r}: any-of needs a non-empty list of scalars")
            conditions.append(MatchAny(field_key, tuple(spec)))
        elif isinstance(spec, Mapping):
            unknown = set(spec) - RANGE_OPS
            if unknown or not spec:
                raise InvalidRequest(
                    f"filter {key!r}: range takes only {sorted(RANGE_OPS)}", field=key
                )
            bounds: dict[str, float] = {}
            for op, bound in spec.items():
                if isinstance(bound, bool) or not isinstance(bound, (int, float)):
                    raise InvalidRequest(f"filter {key!r}: {op} needs a number")
                bounds[op] = float(bound)
            conditions.append(Range(field_key, **bounds))
        else:
            raise InvalidRequest(f"filter {key!r}: unsupported condition {type(spec).__name__}")
    return tuple(conditions)


def parse_filter_args(args: list[str] | None) -> dict[str, Any]:
    """Parse CLI `k=v` pairs; repeated keys become any-of, numbers stay numbers."""
    out: dict[str, Any] = {}
    for arg in args or []:
        if "=" not in arg:
            raise InvalidRequest(f"filter {arg!r} is not key=value")
        key, raw = arg.split("=", 1)
        value: Scalar = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
        if key in out:
            prev = out[key]
            out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[key] = value
    return out
