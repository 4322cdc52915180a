"""LLM generators and the chains built on them (ask, summarize, extract, classify, rewrite).

`GENERATORS` maps `LLMSettings.backend` to a factory; weights load lazily.
"""

from __future__ import annotations

from typing import Any, Callable

from zhiku.engine.errors import ConfigError
from zhiku.engine.llm.base import GenOptions, Generator, Message
from zhiku.engine.registry import lookup
from zhiku.engine.settings import LLMSettings


def _defaults(s: LLMSettings) -> GenOptions:
    return GenOptions(max_tokens=s.max_tokens, temperature=s.temperature)


def _local(s: LLMSettings) -> dict[str, Any]:
    """What both in-process backends are built from."""
    return {
        "model_path": s.model_path,
        "gguf_file": s.gguf_file,
        "threads": s.threads,
        "context_window": s.context_window,
        "defaults": _defaults(s),
    }


def _llamacpp(s: LLMSettings) -> Generator:
    from zhiku.engine.llm.llamacpp import LlamaCppGenerator

    return LlamaCppGenerator(**_local(s), extra_buffers=s.extra_buffers)


def _transformers(s: LLMSettings) -> Generator:
    from zhiku.engine.llm.hf import TransformersGenerator

    if s.model_path is None:
        raise ConfigError("the transformers backend needs llm.model_path (a local model folder)")
    return TransformersGenerator(**_local(s))


def _openai(s: LLMSettings) -> Generator:
    from zhiku.engine.llm.openai_compat import OpenAIGenerator

    return OpenAIGenerator(
        base_url=s.base_url,
        model=s.model,
        api_key=s.api_key.get_secret_value() if s.api_key else None,
        timeout_s=s.timeout_s,
        context_window=s.context_window,
        defaults=_defaults(s),
    )


def _fake(s: LLMSettings) -> Generator:
    from zhiku.engine.llm.fake import ScriptedGenerator

    generator = ScriptedGenerator(context_window=s.context_window)
    generator.defaults = _defaults(s)
    return generator


GENERATORS: dict[str, Callable[[LLMSettings], Generator]] = {
    "llamacpp": _llamacpp,
    "transformers": _transformers,
    "openai": _openai,
    "fake": _fake,
}


def build_generator(settings: LLMSettings) -> Generator:
    """Build the configured generator (weights load on warm_up or first use)."""
    return lookup(GENERATORS, settings.backend, "llm backend")(settings)


__all__ = ["GENERATORS", "GenOptions", "Generator", "Message", "build_generator"]
