"""zhiku (智库): hybrid RAG and semantic search over your documents."""

from __future__ import annotations

__version__ = "0.1.0"
