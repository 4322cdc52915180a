"""zhiku as an MCP server: the same search, ask and documents as the REST API, for agents.

Built on the official `mcp` SDK (`MCPServer`). One server object serves both
transports: `zhiku mcp` runs it over stdio (a desktop agent starts it as a
subprocess), and `zhiku serve` mounts it as streamable HTTP at `/mcp`.

Access follows the REST rules exactly, because it goes through the same code:
over HTTP the key is read by the REST API's own dependencies
(`Authorization: Bearer` or `X-API-Key`, 401 without one once keys exist) and
every tool asks `Access` for the collection at the scope it needs, so a read
key cannot add documents and a key for collection A never reaches B. Over
stdio the caller already owns the data directory, so it gets the principal
the command was started with (open access unless `--key` is given).
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, AsyncIterator, Callable, Literal
from urllib.parse import quote, unquote

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

import zhiku
from zhiku.api.deps import Access, _bearer, _header
from zhiku.api.errors import error_body, status_for
from zhiku.api.routers._convert import answer_out, hit_out
from zhiku.api.routers.collections import collection_out
from zhiku.api.schemas.requests import ChatTurn, CollectionName, DocumentIn
from zhiku.api.schemas.responses import AskResponse, CitationOut, HitOut
from zhiku.api.security import OPEN_ACCESS, Principal
from zhiku.api.services import Services, add_text_documents
from zhiku.engine.errors import ZhikuError

PRINCIPAL_KEY = "zhiku.principal"
DOC_URI = "zhiku://{collection}/documents/{doc_id}"

INSTRUCTIONS = """zhiku is a knowledge base of documents in named collections.
Call list_collections first to see which collections exist and how big they are.
Use search to find passages (hybrid dense + keyword search; it returns the
matching chunks with their doc_id). Use ask for a grounded answer with numbered
citations; it refuses (refused=true, with a refusal_reason) when the documents
do not support an answer. Use get_document to read a whole document by doc_id.
add_documents needs a key with write scope."""


class CollectionInfo(BaseModel):
    name: str
    documents: int
    chunks: int
    model: str = Field("", description="the embedding model the collection was built with")


class Collections(BaseModel):
    collections: list[CollectionInfo]


class SearchResult(BaseModel):
    collection: str
    hits: list[HitOut]


class AskResult(BaseModel):
    answer: str = Field(description="the answer text; [n] markers refer to citations[n]")
    citations: list[CitationOut]
    refused: bool = Field(description="true when the documents do not support an answer")
    refusal_reason: str | None = None


class DocumentText(BaseModel):
    doc_id: str
    title: str = ""
    source: str = ""
    metadata: dict[str, Any] = {}
    text: str
    uri: str = Field(description="the resource URI of this document")


class Added(BaseModel):
    collection: str
    doc_ids: list[str]
    chunks: int


def doc_uri(collection: str, doc_id: str) -> str:
    """A document's resource URI (doc ids may contain '/', so they are percent-encoded)."""
    return DOC_URI.format(collection=collection, doc_id=quote(doc_id, safe=""))


def build_mcp(services: Callable[[], Services], default: Principal = OPEN_ACCESS) -> MCPServer:
    """The MCP server over `services()`; stdio callers get `default`, HTTP callers their key."""
    server = MCPServer("zhiku", instructions=INSTRUCTIONS, version=zhiku.__version__, log_level="WARNING")

    def access(ctx: Context) -> Access:
        request = ctx.request_context.request
        principal = default
        if isinstance(request, Request):
            principal = request.scope.get("state", {}).get(PRINCIPAL_KEY, default)
        return Access(principal, services())

    async def run(acc: Access, fn: Callable[[], Any]) -> Any:
        """`fn` in a worker thread; domain errors become tool errors an agent can read."""
        try:
            return await acc.run(fn)
        except ZhikuError as exc:
            raise ToolError(f"{exc.code}: {exc.message}") from exc

    @server.tool()
    async def list_collections(ctx: Context) -> Collections:
        """List the collections this caller can read, with their document and chunk counts."""
        acc = access(ctx)
        names = await run(acc, acc.visible)
        outs = await run(acc, lambda: [collection_out(acc, n) for n in names])
        return Collections(
            collections=[CollectionInfo(name=o.name, documents=o.documents, chunks=o.chunks, model=o.model) for o in outs]
        )

    @server.tool()
    async def search(
        query: Annotated[str, Field(min_length=1, max_length=10_000, description="what to look for, in any language")],
        ctx: Context,
        collection: Annotated[CollectionName, Field(description="collection to search (see list_collections)")] = "default",
        top_k: Annotated[int, Field(ge=1, le=50, description="how many passages to return")] = 5,
        mode: Annotated[
            Literal["hybrid", "dense", "bm25"],
            Field(description="hybrid (default) fuses meaning and keywords; dense = meaning only; bm25 = keywords only"),
        ] = "hybrid",
        filters: Annotated[
            dict[str, Any] | None,
            Field(description='metadata filters: {"lang": "en"}, {"tag": ["a", "b"]} (any of), {"year": {"gte": 2000}}'),
        ] = None,
    ) -> SearchResult:
        """Search a collection and return the best-matching passages (chunks) with doc_id, title, section and score."""
        acc = access(ctx)
        kb = await run(acc, lambda: acc.kb(collection, "read"))
        hits = await run(acc, lambda: kb.search(query, top_k=top_k, mode=mode, filters=filters))
        return SearchResult(collection=collection, hits=[hit_out(h) for h in hits])

    @server.tool()
    async def ask(
        question: Annotated[str, Field(min_length=1, max_length=10_000, description="the question, in any language")],
        ctx: Context,
        collection: Annotated[CollectionName, Field(description="collection to answer from")] = "default",
        filters: Annotated[dict[str, Any] | None, Field(description="metadata filters, as for search")] = None,
        history: Annotated[
            list[ChatTurn],
            Field(max_length=20, description="earlier turns of this conversation, oldest first, for follow-up questions"),
        ] = [],
    ) -> AskResult:
        """Answer a question from a collection's documents, with numbered citations ([n] in the answer).

        When the documents do not support an answer, `refused` is true and
        `refusal_reason` says why; do not treat a refusal as an answer.
        """
        acc = access(ctx)
        llm = await run(acc, lambda: acc.llm(collection, "read"))
        try:
            answer = await acc.generate(lambda: llm.ask(question, [t.model_dump() for t in history], filters=filters))
        except ZhikuError as exc:  # the queue is full or timed out
            raise ToolError(f"{exc.code}: {exc.message}") from exc
        out: AskResponse = answer_out(answer)
        return AskResult(
            answer=out.answer, citations=out.citations, refused=out.refused, refusal_reason=out.refusal_reason
        )

    async def read_document(acc: Access, collection: str, doc_id: str) -> DocumentText:
        kb = await run(acc, lambda: acc.kb(collection, "read"))
        doc = await run(acc, lambda: kb.get_document(doc_id))
        return DocumentText(
            doc_id=doc.doc_id, title=doc.title, source=doc.source, metadata=doc.metadata, text=doc.text,
            uri=doc_uri(collection, doc.doc_id),
        )

    @server.tool()
    async def get_document(
        doc_id: Annotated[str, Field(min_length=1, max_length=512, description="a doc_id from search or ask")],
        ctx: Context,
        collection: Annotated[CollectionName, Field(description="the collection holding it")] = "default",
    ) -> DocumentText:
        """Read one whole document (its full text, title, source and metadata) by doc_id."""
        return await read_document(access(ctx), collection, doc_id)

    @server.tool()
    async def add_documents(
        documents: Annotated[
            list[DocumentIn],
            Field(min_length=1, max_length=1000, description="documents as text: {id, text, title, source, metadata}"),
        ],
        ctx: Context,
        collection: Annotated[CollectionName, Field(description="collection to add to (an admin key creates it if missing)")] = "default",
    ) -> Added:
        """Add or replace documents given as text (needs a key with write scope). Re-using an id replaces that document."""
        acc = access(ctx)

        def write() -> Added:
            outcome = add_text_documents(acc.writable_kb(collection), documents)
            return Added(collection=collection, doc_ids=outcome.doc_ids, chunks=outcome.chunks or 0)

        return await run(acc, write)

    @server.resource(DOC_URI, mime_type="application/json", description="one document: text, title, source, metadata")
    async def document(collection: str, doc_id: str, ctx: Context) -> str:
        """A document of a collection as JSON; doc_id is percent-encoded."""
        doc = await read_document(access(ctx), collection, unquote(doc_id))
        return doc.model_dump_json()

    return server


class McpHttp:
    """The streamable-HTTP endpoint: authenticates like the REST API, then hands over to the SDK.

    Stateless JSON mode: every POST is one self-contained exchange, so any
    worker process can answer it and no session outlives its request.
    """

    def __init__(self, server: MCPServer, services: Callable[[], Services], host: str) -> None:
        self.server = server
        self.services = services
        self.host = host
        self.manager: StreamableHTTPSessionManager | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Run a fresh SDK session manager for the app's lifetime (one manager runs only once)."""
        # The SDK's own wiring (its DNS-rebinding guard on loopback binds included); we mount
        # only the manager, behind our authentication, not the Starlette app it comes with.
        self.server.streamable_http_app(stateless_http=True, json_response=True, host=self.host)
        self.manager = self.server.session_manager
        async with self.manager.run():
            yield
        self.manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            bearer = await _bearer(request)
            token = bearer.credentials if bearer is not None else await _header(request)
            principal = self.services().auth.principal(token, scope.get("client"))
        except ZhikuError as exc:
            response = JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=status_for(exc))
            await response(scope, receive, send)
            return
        if self.manager is None:
            raise RuntimeError("the MCP endpoint is served only inside the app's lifespan")
        scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
        await self.manager.handle_request(scope, receive, send)

