"""The collection-name rule, written once: the stores check it, the API publishes it in its schema."""

from __future__ import annotations

import re

from zhiku.engine.errors import InvalidRequest

# A name is a folder of the edge store and a Qdrant collection name. "." and
# ".." also match the pattern (JSON Schema patterns here can't look ahead);
# check_collection_name refuses them.
COLLECTION_NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
COLLECTION_NAME_RULE = "1-64 letters, digits, '-', '_' or '.'"
_NAME = re.compile(COLLECTION_NAME_PATTERN)


def check_collection_name(name: object) -> str:
    """Return a valid collection name or raise InvalidRequest."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in {".", ".."}:
        raise InvalidRequest(f"bad collection name {name!r}: use {COLLECTION_NAME_RULE}", name=name, field="collection")
    return name
