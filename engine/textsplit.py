"""Size-bounded recursive splitting of plain text, measured in embedder tokens."""

from __future__ import annotations

from typing import Callable

# Paragraphs, lines, then sentence ends in Chinese and English, then clauses, words.
SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", ". ", "! ", "? ", "; ", "，", ", ", " ", ""]


def split_text(
    text: str, size: int, overlap: int, count_tokens: Callable[[str], int]
) -> list[str]:
    """Split text into pieces of at most `size` tokens with `overlap` tokens shared."""
    text = text.strip()
    if not text:
        return []
    if count_tokens(text) <= size:
        return [text]
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=min(overlap, size // 2),
        length_function=count_tokens,
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )
    return [piece for piece in splitter.split_text(text) if piece.strip()]
