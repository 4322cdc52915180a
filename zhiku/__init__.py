"""zhiku (智库): hybrid RAG and semantic search over your documents.

The public API, imported lazily so `import zhiku` stays cheap:
`KnowledgeBase`, `Hit`, `Settings`, `load_settings`, and the domain errors.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "KnowledgeBase": "zhiku.library",
    "Document": "zhiku.engine.kb",
    "Engine": "zhiku.engine.engine",
    "Hit": "zhiku.engine.types",
    "Chunk": "zhiku.engine.types",
    "Settings": "zhiku.engine.settings",
    "load_settings": "zhiku.engine.settings",
    "ZhikuError": "zhiku.engine.errors",
    "NotFound": "zhiku.engine.errors",
    "InvalidRequest": "zhiku.engine.errors",
    "ManifestMismatch": "zhiku.engine.errors",
    "StoreLocked": "zhiku.engine.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'zhiku' has no attribute {name!r}")
