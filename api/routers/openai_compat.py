"""OpenAI-compatible chat: `model: "zhiku/<collection>"` answers from that collection.

The last user message is the question; earlier user/assistant turns are the
history (follow-ups are condensed by the ask chain); system messages are
ignored, since the grounded prompt is zhiku's own.

Extension: every non-streamed completion, and the last chunk of a stream,
carries a top-level `zhiku` object: `{citations: [{n, doc_id, chunk_id, title,
snippet, score, source}], refused, refusal_reason, timings_ms}`. The first
chunk of a stream carries `zhiku.sources`, the numbered sources the model saw.
OpenAI clients ignore unknown fields; read it with `completion.model_extra["zhiku"]`
(openai-python) or from the raw JSON.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from zhiku.api.deps import JSON_ONLY, AccessDep
from zhiku.api.errors import error_body, status_for
from zhiku.api.limits import check_text, check_texts
from zhiku.api.routers._convert import citations_out, sources_out
from zhiku.api.schemas.requests import ChatCompletionRequest, ChatMessage
from zhiku.api.schemas.responses import (
    AssistantMessage,
    ChatCompletion,
    Choice,
    ErrorResponse,
    ModelCard,
    ModelList,
    ZhikuExtension,
)
from zhiku.api.sse import SSE_DOC, sse_event, sse_response
from zhiku.engine.errors import InvalidRequest, NotFound, ZhikuError

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=JSON_ONLY)
MODEL_PREFIX = "zhiku/"


def collection_of(model: str) -> str:
    """`zhiku/<collection>` -> collection; anything else is an unknown model."""
    if not model.startswith(MODEL_PREFIX) or len(model) == len(MODEL_PREFIX):
        raise NotFound(f"model {model!r} does not exist; use 'zhiku/<collection>'", model=model)
    return model[len(MODEL_PREFIX) :]


def _text(message: ChatMessage) -> str:
    if isinstance(message.content, list):
        return "".join(str(p.get("text", "")) for p in message.content if p.get("type") == "text")
    return message.content or ""


def split_messages(messages: list[ChatMessage]) -> tuple[str, list[dict[str, str]]]:
    """The question (last user message) and the user/assistant history before it."""
    turns = [(m.role, _text(m)) for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise InvalidRequest("the last message must be a non-empty user message", field="messages")
    history = [{"role": role, "content": text} for role, text in turns[:-1]]
    return turns[-1][1], history


def _extension(answer: Any) -> ZhikuExtension:
    return ZhikuExtension(
        citations=citations_out(answer.citations),
        mode=answer.mode,
        refused=answer.refused,
        refusal_reason=answer.refusal_reason,
        timings_ms=answer.timings,
    )


class _ChunkEncoder:
    """Engine ask events -> `chat.completion.chunk` SSE lines, ending with [DONE]."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model
        self.streamed = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return sse_event(None, body)

    def __call__(self, event: Any) -> list[bytes]:
        if event.type == "sources":
            sources = [s.model_dump() for s in sources_out(event.data)]
            return [self._chunk({"role": "assistant", "content": ""}, zhiku={"sources": sources})]
        if event.type == "token":
            self.streamed = True
            return [self._chunk({"content": event.data})]
        answer = event.data
        out = [] if self.streamed else [self._chunk({"content": answer.text})]
        out.append(self._chunk({}, "stop", zhiku=_extension(answer).model_dump()))
        out.append(b"data: [DONE]\n\n")
        return out

    def error(self, exc: ZhikuError) -> list[bytes]:
        body = error_body(exc.code, exc.message, exc.details)
        body["error"]["status"] = status_for(exc)
        return [sse_event(None, body), b"data: [DONE]\n\n"]


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: SSE_DOC, 429: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
async def chat_completions(body: ChatCompletionRequest, access: AccessDep) -> Response | ChatCompletion:
    """A grounded answer from collection `<c>` for model `zhiku/<c>`, streamed or whole."""
    collection = collection_of(body.model)
    question, history = split_messages(body.messages)
    check_text(access.settings, question=question)
    check_texts(access.settings, "messages", (h["content"] for h in history))
    access.principal.authorize(collection, "read")
    if body.stream:
        encoder = _ChunkEncoder(body.model)
        first, stream, stack = await access.stream(lambda: access.llm(collection).ask_stream(question, history))
        return sse_response(first, stream, stack, encoder, encoder.error)
    answer = await access.generate(lambda: access.llm(collection).ask(question, history))
    access.metrics.observe_stages("/v1/chat/completions", answer.timings)
    return ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=body.model,
        choices=[Choice(message=AssistantMessage(content=answer.text))],
        zhiku=_extension(answer),
    )


@router.get("/models", response_model=ModelList)
async def list_models(access: AccessDep) -> ModelList:
    """One model per collection this key can read: `zhiku/<collection>`."""
    names = await access.run(access.visible)
    return ModelList(data=[ModelCard(id=MODEL_PREFIX + n) for n in names])
