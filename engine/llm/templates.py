"""Prompt files (engine/llm/prompts/NAME.LANG.md) loaded as LangChain chat templates.

A file holds `### system` and `### user` sections; `{name}` fields are filled
by the chain, `{{` and `}}` are literal braces. The language is the question's.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from langchain_core.prompts import ChatPromptTemplate

from zhiku.engine.errors import ConfigError

Lang = Literal["en", "zh"]
PROMPT_DIR = Path(__file__).resolve().parent / "prompts"
LANGS: tuple[Lang, ...] = ("en", "zh")

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
_SECTION = re.compile(r"^### (system|user|assistant)\s*$", re.M)

REFUSALS: dict[Lang, str] = {
    "en": "Not found in the documents.",
    "zh": "文档中没有找到答案。",
}


def detect_language(text: str) -> Lang:
    """'zh' when CJK characters make up a fifth of the words (a character counts as one)."""
    cjk = len(_CJK.findall(text))
    latin_words = len(_LATIN_WORD.findall(text))
    return "zh" if cjk and cjk >= 0.2 * (cjk + latin_words) else "en"


@lru_cache(maxsize=64)
def load_prompt(name: str, lang: Lang = "en") -> ChatPromptTemplate:
    """The chat template NAME in LANG (English when no translation exists)."""
    path = PROMPT_DIR / f"{name}.{lang}.md"
    if not path.exists():
        path = PROMPT_DIR / f"{name}.en.md"
    if not path.exists():
        raise ConfigError(f"no prompt file {name!r} in {PROMPT_DIR}")
    parts = _SECTION.split(path.read_text(encoding="utf-8"))
    # split() gives [preamble, role, body, role, body, ...]; the preamble is a comment.
    roles = {"user": "human", "system": "system", "assistant": "ai"}
    messages = [(roles[r], b.strip()) for r, b in zip(parts[1::2], parts[2::2])]
    if not messages:
        raise ConfigError(f"prompt file {path} has no ### sections")
    return ChatPromptTemplate.from_messages(messages)
