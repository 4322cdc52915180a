"""Embeddings from any OpenAI-compatible endpoint (TEI, vLLM, Ollama, hosted APIs).

Speaks `POST {base_url}/embeddings` with `{"model", "input"}`. The dimension is
whatever the server returns; it is learned from the first response (a one-text
probe if something asks for `dim` before anything was embedded).
"""

from __future__ import annotations

from typing import Any, Sequence

import httpx
import numpy as np

from zhiku.engine.embedders.base import Embedder
from zhiku.engine.errors import ConfigError, ModelUnavailable

_PROBE_TEXT = "dimension probe"


class OpenAIEmbedder(Embedder):
    """A remote embedding model behind the OpenAI embeddings API."""

    def __init__(
        self,
        base_url: str | None,
        model: str | None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        batch_size: int = 64,
    ) -> None:
        if not base_url:
            raise ConfigError("backend 'openai' needs embed.base_url (e.g. http://localhost:8080/v1)")
        if not model:
            raise ConfigError("backend 'openai' needs embed.model (the served model's name)")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.model_id = f"openai:{model}"
        self.batch_size = batch_size
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout_s,
            transport=httpx.HTTPTransport(retries=1),  # retries connection failures only
        )
        self._dim: int | None = None

    @property
    def dim(self) -> int:  # type: ignore[override]
        if self._dim is None:
            self.warm_up()
        assert self._dim is not None
        return self._dim

    def warm_up(self) -> None:
        if self._dim is None:
            self._embed_batch([_PROBE_TEXT])

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.close()

    def _embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        payload = {"model": self.model, "input": list(texts)}
        try:
            response = self._client.post("/embeddings", json=payload)
        except httpx.HTTPError as exc:
            raise ModelUnavailable(
                f"embedding server {self.base_url} unreachable: {type(exc).__name__}: {exc}"
            ) from exc
        if response.status_code != 200:
            raise ModelUnavailable(
                f"embedding server {self.base_url} answered {response.status_code}: "
                f"{response.text[:300]}",
                status=response.status_code,
            )
        matrix = _parse(response, expected_rows=len(texts))
        if self._dim is None:
            self._dim = matrix.shape[1]
        elif matrix.shape[1] != self._dim:
            raise ModelUnavailable(
                f"embedding server changed dimension from {self._dim} to {matrix.shape[1]}"
            )
        return matrix


def _parse(response: httpx.Response, expected_rows: int) -> np.ndarray:
    """Rows of `data`, put back in input order by their `index`."""
    try:
        body: Any = response.json()
        items = sorted(body["data"], key=lambda item: item.get("index", 0))
        matrix = np.asarray([item["embedding"] for item in items], dtype=np.float32)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelUnavailable(f"embedding server sent a malformed response: {exc}") from exc
    if matrix.ndim != 2 or matrix.shape[0] != expected_rows or matrix.shape[1] == 0:
        raise ModelUnavailable(
            f"embedding server returned shape {matrix.shape} for {expected_rows} texts"
        )
    return matrix
