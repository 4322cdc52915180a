"""The other LLM abilities: summarize, extract, classify, rewrite, generate.

Each runs under the LLM gate (bounded queue: 429 when full) with the request
timeout; texts are capped at server.max_text_chars.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from fastapi import APIRouter

from zhiku.api.deps import JSON_ONLY, Access, AccessDep
from zhiku.api.limits import check_text, check_texts
from zhiku.api.schemas.requests import (
    ClassifyRequest,
    ExtractRequest,
    GenerateRequest,
    RewriteRequest,
    SummarizeRequest,
)
from zhiku.api.schemas.responses import ClassifyOut, ErrorResponse, ExtractOut, TextOut
from zhiku.engine.errors import InvalidRequest

T = TypeVar("T")
_BUSY: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorResponse, "description": "LLM queue full (Retry-After)"},
    503: {"model": ErrorResponse, "description": "timed out or model unavailable (Retry-After)"},
}
router = APIRouter(tags=["abilities"], responses=_BUSY, dependencies=JSON_ONLY)


async def _run(access: Access, fn: Callable[[], T]) -> T:
    return await access.generate(fn)


@router.post("/summarize", response_model=TextOut)
async def summarize(body: SummarizeRequest, access: AccessDep) -> TextOut:
    """Summarize a text, stored documents (`doc_ids`) and/or a search's hits (`query`)."""
    check_text(access.settings, text=body.text, query=body.query)
    if not (body.text or body.doc_ids or body.query):
        raise InvalidRequest("give text, doc_ids or query to summarize")
    grounded = bool(body.doc_ids or body.query)
    if grounded:
        access.principal.authorize(body.collection, "read")

    def run() -> TextOut:
        llm = access.llm(body.collection if grounded else None)
        texts = [body.text] if body.text else []
        texts += llm.summary_inputs(body.doc_ids, body.query, body.top_k, body.filters) if grounded else []
        if not texts:
            raise InvalidRequest("nothing to summarize: no documents or hits matched")
        return TextOut(text=llm.summarize(texts, body.length))

    return await _run(access, run)


@router.post("/extract", response_model=ExtractOut)
async def extract(body: ExtractRequest, access: AccessDep) -> ExtractOut:
    """Extract JSON matching a JSON Schema from a text (validated, retried on errors)."""
    check_text(access.settings, text=body.text)

    def run() -> ExtractOut:
        result = access.llm(None).extract(body.text, body.json_schema, body.retries)
        data = result.data.model_dump() if hasattr(result.data, "model_dump") else result.data
        return ExtractOut(data=data, valid=result.valid, attempts=result.attempts, errors=result.errors)

    return await _run(access, run)


@router.post("/classify", response_model=ClassifyOut)
async def classify(body: ClassifyRequest, access: AccessDep) -> ClassifyOut:
    """Classify a text into the given labels, with a confidence."""
    check_text(access.settings, text=body.text)
    check_texts(access.settings, "examples", (e.text for e in body.examples))
    examples = [(e.text, e.labels if body.multi_label else e.labels[0]) for e in body.examples]

    def run() -> ClassifyOut:
        result = access.llm(None).classify(body.text, body.labels, examples, body.multi_label)
        return ClassifyOut(labels=result.labels, label=result.label, confidence=result.confidence, scores=result.scores)

    return await _run(access, run)


@router.post("/rewrite", response_model=TextOut)
async def rewrite(body: RewriteRequest, access: AccessDep) -> TextOut:
    """Polish, correct, simplify, or translate (`style: translate`, `target_language`)."""
    check_text(access.settings, text=body.text)
    if body.style == "translate" and not body.target_language:
        raise InvalidRequest("translate needs target_language", field="target_language")
    return await _run(
        access, lambda: TextOut(text=access.llm(None).rewrite(body.text, body.style, body.target_language))
    )


@router.post("/generate", response_model=TextOut)
async def generate(body: GenerateRequest, access: AccessDep) -> TextOut:
    """Free generation, or grounded in a collection's search results."""
    check_text(access.settings, prompt=body.prompt)
    if body.grounded:
        access.principal.authorize(body.collection, "read")

    def run() -> TextOut:
        llm = access.llm(body.collection if body.grounded else None)
        return TextOut(text=llm.generate(body.prompt, body.grounded, body.top_k, body.filters))

    return await _run(access, run)
