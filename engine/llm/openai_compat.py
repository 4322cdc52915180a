"""Any OpenAI-compatible chat server: vLLM, Ollama, llama.cpp server, TGI, hosted APIs."""

from __future__ import annotations

import json
from typing import Any, Iterator, Sequence

import httpx

from zhiku.engine.errors import ConfigError, ModelUnavailable, Overloaded
from zhiku.engine.llm.base import GenOptions, Generator, Message


class OpenAIGenerator(Generator):
    """Streams `/chat/completions` over server-sent events with plain httpx."""

    def __init__(
        self,
        base_url: str | None,
        model: str | None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        context_window: int = 4096,
        defaults: GenOptions = GenOptions(),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url:
            raise ConfigError("the openai backend needs llm.base_url (e.g. http://localhost:8000/v1)")
        self.base_url = base_url.rstrip("/")
        self.model_id = model or "default"
        self.context_window = context_window
        self.defaults = defaults
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport
        )

    def _body(self, messages: Sequence[Message], options: GenOptions) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": list(messages),
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "stream": True,
        }
        if options.stop:
            body["stop"] = list(options.stop)
        if options.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": options.json_schema},
            }
        return body

    def _stream(self, messages: Sequence[Message], options: GenOptions) -> Iterator[str]:
        try:
            with self._client.stream(
                "POST", "/chat/completions", json=self._body(messages, options)
            ) as response:
                _raise_for_status(response)
                for line in response.iter_lines():
                    piece = _sse_content(line)
                    if piece is None:
                        break
                    if piece:
                        yield piece
        except httpx.TransportError as exc:
            raise ModelUnavailable(f"LLM server {self.base_url} unreachable: {exc}") from exc


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    detail = response.read().decode("utf-8", "replace")[:300]
    if response.status_code in (429, 503):
        raise Overloaded(f"LLM server busy ({response.status_code}): {detail}")
    raise ModelUnavailable(f"LLM server answered {response.status_code}: {detail}")


def _sse_content(line: str) -> str | None:
    """Text carried by one SSE line; '' for lines without text, None at the end marker."""
    if not line.startswith("data:"):
        return ""
    data = line[5:].strip()
    if data == "[DONE]":
        return None
    try:
        choices = json.loads(data).get("choices") or [{}]
    except json.JSONDecodeError:
        return ""
    return (choices[0].get("delta") or {}).get("content") or ""
