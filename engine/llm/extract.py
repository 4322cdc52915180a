"""Extraction to a JSON Schema or a pydantic model: validated, retried with the error."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from langchain_core.output_parsers import StrOutputParser
from pydantic import BaseModel, ValidationError

from zhiku.engine.errors import InvalidRequest
from zhiku.engine.llm.chat_model import GeneratorChatModel
from zhiku.engine.llm.templates import detect_language, load_prompt

Schema = dict[str, Any] | type[BaseModel]

_FEEDBACK = {
    "en": "\nYour previous reply was not valid: {error}\nPrevious reply: {reply}\nReply again with corrected JSON.\n",
    "zh": "\n你上一次的回答无效：{error}\n上一次的回答：{reply}\n请重新输出修正后的 JSON。\n",
}


@dataclass(slots=True)
class Extraction:
    """Validated data (a dict, or the pydantic model instance) or the last error."""

    data: Any
    valid: bool
    attempts: int
    errors: list[str] = field(default_factory=list)
    raw: str = ""


def parse_json(reply: str) -> Any:
    """The first JSON object or array in a reply (code fences and chatter ignored)."""
    text = re.sub(r"```(?:json)?", "", reply)
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        raise ValueError("no JSON object found")
    value, _ = json.JSONDecoder().raw_decode(text[min(starts) :])
    return value


def validator_for(schema: Schema) -> tuple[dict[str, Any], Callable[[Any], Any]]:
    """The JSON Schema to show the model, and a function that validates (raises ValueError)."""
    if isinstance(schema, type) and issubclass(schema, BaseModel):

        def check_model(value: Any) -> Any:
            try:
                return schema.model_validate(value)
            except ValidationError as exc:
                raise ValueError(_short(str(exc))) from None

        return schema.model_json_schema(), check_model
    if not isinstance(schema, dict):
        raise InvalidRequest("schema must be a JSON Schema dict or a pydantic model class")
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidRequest(f"invalid JSON Schema: {exc.message}") from None
    validator = jsonschema.Draft202012Validator(schema, registry=_closed_registry())
    _check_refs(validator, schema)

    def check_dict(value: Any) -> Any:
        try:
            error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        except _unresolvable() as exc:
            raise InvalidRequest(f"$ref outside the given schema: {exc}") from None
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise ValueError(f"at {where}: {error.message}")
        return value

    return schema, check_dict


def _unresolvable() -> tuple[type[BaseException], ...]:
    from referencing.exceptions import Unresolvable

    return (Unresolvable, ExternalRef)


class ExternalRef(Exception):
    """A schema referred to something outside itself."""


def _refuse(uri: str) -> Any:
    # Never fetch: a remote $ref is a request forgery, a file:// one a file read.
    raise ExternalRef(f"$ref {uri!r} points outside the given schema; only local refs (#/...) are allowed")


def _closed_registry() -> Any:
    """A referencing Registry that resolves nothing but the schema itself."""
    from referencing import Registry

    return Registry(retrieve=_refuse)


def _refs(node: Any, resolver: Any) -> Iterator[tuple[str, Any]]:
    """Every $ref in a schema with the resolver of its scope (a nested `$id` starts a new one)."""
    if isinstance(node, dict):
        if isinstance(node.get("$id"), str):
            from referencing.jsonschema import DRAFT202012

            resolver = resolver.in_subresource(DRAFT202012.create_resource(node))
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield value, resolver
            else:
                yield from _refs(value, resolver)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item, resolver)


def _check_refs(validator: Any, schema: dict[str, Any]) -> None:
    """422 now, not at the first validation, for any $ref that does not resolve inside `schema`."""
    for ref, resolver in _refs(schema, validator._resolver):
        try:
            resolver.lookup(ref)
        except _unresolvable() as exc:
            raise InvalidRequest(f"unresolvable $ref {ref!r}: {_cause(exc)}", ref=ref) from None


def _cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc)


def _short(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[:limit] + " …"


def extract(model: GeneratorChatModel, text: str, schema: Schema, retries: int = 2, max_tokens: int = 512) -> Extraction:
    """Ask for JSON matching the schema; on invalid output, retry showing the error."""
    if not text or not text.strip():
        raise InvalidRequest("nothing to extract from")
    shown, check = validator_for(schema)
    lang = detect_language(text)
    prompt = load_prompt("extract", lang)
    errors: list[str] = []
    feedback = ""
    reply = ""
    for attempt in range(1, retries + 2):
        # The last try asks for grammar-constrained decoding where the backend has it.
        last = attempt == retries + 1 and retries > 0
        chain = prompt | model.bind(max_tokens=max_tokens, json_schema=shown, constrain=last) | StrOutputParser()
        reply = chain.invoke(
            {"schema": json.dumps(shown, ensure_ascii=False), "text": text, "feedback": feedback}
        )
        try:
            return Extraction(check(parse_json(reply)), True, attempt, errors, reply)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError too
            errors.append(str(exc))
            feedback = _FEEDBACK[lang].format(error=str(exc), reply=_short(reply.strip(), 600))
    return Extraction(None, False, retries + 1, errors, reply)
