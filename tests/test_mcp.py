"""The MCP server through the SDK's own client: in process, over streamable HTTP and over stdio.

Troubleshooting: HTTP tests start a real uvicorn on loopback with the fake
embedder and generator; the stdio test starts `zhiku mcp` as a subprocess
on an edge store seeded (and closed) by the test first.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from api_support import DOCS, fake_settings, running_server
from zhiku.api import create_app
from zhiku.api.mcp_server import build_mcp, doc_uri
from zhiku.api.security import KeyStore, OPEN_ACCESS, Principal
from zhiku.api.services import Services

TOOLS = {"search", "ask", "list_collections", "get_document", "add_documents"}


def _client(base: str, key: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return Client(streamable_http_client(base + "/mcp", http_client=httpx2.AsyncClient(headers=headers, timeout=60)))


def _seed(base: str, collection: str, key: str | None = None) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    r = httpx.post(base + "/documents", json={"collection": collection, "documents": DOCS}, headers=headers, timeout=60)
    assert r.status_code == 201, r.text


def test_tools_describe_themselves(tmp_path: Path) -> None:
    """Every tool has a description and typed parameters an agent can fill in without our docs."""
    services = Services(fake_settings(tmp_path))
    try:
        server = build_mcp(lambda: services, OPEN_ACCESS)

        async def listed() -> list[Any]:
            async with Client(server) as client:
                return (await client.list_tools()).tools

        tools = {t.name: t for t in asyncio.run(listed())}
        assert set(tools) == TOOLS
        for tool in tools.values():
            assert tool.description and len(tool.description) > 30
            assert "ctx" not in tool.input_schema.get("properties", {})
        assert tools["search"].input_schema["required"] == ["query"]
        assert "description" in tools["search"].input_schema["properties"]["mode"]
        assert tools["ask"].output_schema is not None
    finally:
        services.close()


def test_doc_uri_encodes_slashes() -> None:
    assert doc_uri("docs", "a/b c.md") == "zhiku://docs/documents/a%2Fb%20c.md"


@pytest.mark.integration
def test_http_tools_with_open_access(tmp_path: Path) -> None:
    """No keys: list tools, search returns hits, ask returns citations, documents are resources."""
    with running_server(create_app(fake_settings(tmp_path))) as base:
        _seed(base, "docs")
        # Loopback without keys: the SDK's DNS-rebinding guard refuses a foreign Host.
        init = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        rebound = httpx.post(base + "/mcp", json=init, headers={"Host": "evil.example", "Accept": "application/json, text/event-stream"})
        assert rebound.status_code in (400, 403, 421), rebound.text

        async def run() -> None:
            async with _client(base) as client:
                assert {t.name for t in (await client.list_tools()).tools} == TOOLS
                found = await client.call_tool("search", {"query": "Eiffel Tower Paris", "collection": "docs"})
                assert not found.is_error
                assert found.structured_content["hits"][0]["doc_id"] == "eiffel"
                answer = await client.call_tool("ask", {"question": "Where is the Eiffel Tower?", "collection": "docs"})
                assert not answer.is_error
                assert answer.structured_content["citations"][0]["doc_id"] == "eiffel"
                follow = await client.call_tool("ask", {
                    "question": "When was it completed?", "collection": "docs",
                    "history": [{"role": "user", "content": "Where is the Eiffel Tower?"},
                                {"role": "assistant", "content": answer.structured_content["answer"]}],
                })
                assert not follow.is_error, follow.content
                mixed = await client.call_tool("add_documents", {"collection": "docs", "documents": [{"text": "a", "id": "x"}, {"text": "b"}]})
                assert mixed.is_error and "id for every document" in mixed.content[0].text
                listed = await client.call_tool("list_collections", {})
                assert listed.structured_content["collections"][0]["name"] == "docs"
                doc = await client.read_resource(doc_uri("docs", "gugong"))
                assert "故宫" in doc.contents[0].text

        asyncio.run(run())


@pytest.mark.integration
def test_http_keys_and_scopes(tmp_path: Path) -> None:
    """The REST API's keys: none is 401, read cannot add, a key for A cannot reach B."""
    keys = KeyStore(tmp_path)
    admin, _ = keys.create(["*"], "admin")
    read_a, _ = keys.create(["a"], "read")
    with running_server(create_app(fake_settings(tmp_path))) as base:
        _seed(base, "a", admin)
        _seed(base, "b", admin)
        assert httpx.post(base + "/mcp", json={}).status_code == 401

        async def run() -> None:
            async with _client(base, read_a) as client:
                added = await client.call_tool(
                    "add_documents", {"collection": "a", "documents": [{"text": "new text", "id": "n1"}]}
                )
                assert added.is_error and "may not write" in added.content[0].text
                other = await client.call_tool("search", {"query": "Eiffel", "collection": "b"})
                assert other.is_error and "may not read" in other.content[0].text
                doc = await client.call_tool("get_document", {"doc_id": "eiffel", "collection": "b"})
                assert doc.is_error
                listed = await client.call_tool("list_collections", {})
                assert [c["name"] for c in listed.structured_content["collections"]] == ["a"]
                mine = await client.call_tool("search", {"query": "Eiffel", "collection": "a"})
                assert not mine.is_error and mine.structured_content["hits"]
            async with _client(base, admin) as client:
                added = await client.call_tool(
                    "add_documents", {"collection": "b", "documents": [{"text": "The Louvre is a museum.", "id": "louvre"}]}
                )
                assert not added.is_error, added.content
                assert added.structured_content["doc_ids"] == ["louvre"]

        asyncio.run(run())


@pytest.mark.integration
def test_stdio_server(tmp_path: Path) -> None:
    """`zhiku mcp` over stdio, started as a subprocess the way a desktop agent does."""
    from zhiku.engine.kb import KnowledgeBase

    env = {
        **os.environ,
        "ZHIKU_EMBED__BACKEND": "fake",
        "ZHIKU_LLM__BACKEND": "fake",
        "ZHIKU_STORE__BACKEND": "edge",
        "ZHIKU_DATA_DIR": str(tmp_path),
    }
    settings = fake_settings(tmp_path, store="edge")
    with KnowledgeBase(settings=settings, collection="docs") as kb:
        kb.add_texts([d["text"] for d in DOCS], ids=[d["id"] for d in DOCS], metadatas=[{"title": d["title"]} for d in DOCS])
    params = StdioServerParameters(
        command=sys.executable, args=["-c", "from zhiku.cli import main; main()", "mcp"], env=env, cwd=str(tmp_path)
    )

    async def run() -> None:
        async with Client(params, read_timeout_seconds=120) as client:
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            found = await client.call_tool("search", {"query": "Great Wall China", "collection": "docs"})
            assert found.structured_content["hits"][0]["doc_id"] == "great-wall"
            answer = await client.call_tool("ask", {"question": "How long is the Great Wall?", "collection": "docs"})
            assert answer.structured_content["citations"], answer.structured_content

    asyncio.run(run())


def test_stdio_principal_limits_tools(tmp_path: Path) -> None:
    """`zhiku mcp --key K` acts as K: read scope on `a` cannot write, nor read `b` (in process, fast)."""
    services = Services(fake_settings(tmp_path))
    try:
        services.kb("a", create=True).add_texts(["The Louvre is in Paris."], ids=["louvre"])
        services.kb("b", create=True).add_texts(["Secret text."], ids=["secret"])
        server = build_mcp(lambda: services, Principal("k", "read", ("a",)))

        async def run() -> None:
            async with Client(server) as client:
                ok = await client.call_tool("search", {"query": "Louvre", "collection": "a"})
                assert not ok.is_error and ok.structured_content["hits"][0]["doc_id"] == "louvre"
                denied = await client.call_tool("add_documents", {"collection": "a", "documents": [{"text": "x"}]})
                assert denied.is_error and "forbidden: this key may not write" in denied.content[0].text, denied.content
                hidden = await client.call_tool("get_document", {"doc_id": "secret", "collection": "b"})
                assert hidden.is_error and "Secret" not in hidden.content[0].text
                listed = await client.call_tool("list_collections", {})
                assert [c["name"] for c in listed.structured_content["collections"]] == ["a"]

        asyncio.run(run())
    finally:
        services.close()


def test_mcp_command_refuses_an_unknown_key(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from zhiku.cli import app

    KeyStore(tmp_path).create(["*"], "read")
    result = CliRunner().invoke(app, ["mcp", "--data-dir", str(tmp_path), "--key", "zk_wrong"])
    assert result.exit_code == 2
    assert "unknown or revoked" in result.output
