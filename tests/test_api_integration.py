"""A real uvicorn server on a free loopback port, real HTTP, the real edge store.

Troubleshooting: these start uvicorn in a thread (or `zhiku serve` in a
subprocess) with the fake embedder and scripted generator. A failure to start
usually means the port was taken between picking and binding (rerun), or the
edge store is locked by a stale process on the same data dir.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from api_support import DOCS, fake_settings, free_port, running_server

from zhiku.api import create_app
from zhiku.api.security import KeyStore

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("api-int")
    store = KeyStore(data)
    admin, _ = store.create(["*"], "admin")
    reader, _ = store.create(["docs"], "read")
    app = create_app(fake_settings(data, store="edge"))
    with running_server(app) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=30) as client:
            r = client.post("/documents", json={"collection": "docs", "documents": DOCS})
            assert r.status_code == 201, r.text
        yield url, admin, reader


def test_search_over_http(server):
    url, _, reader = server
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {reader}"}) as client:
        r = client.post("/search", json={"query": "Eiffel Tower", "collection": "docs", "debug": True})
        assert r.status_code == 200
        assert r.json()["hits"][0]["doc_id"] == "eiffel"
        assert client.post("/search", json={"query": "x", "collection": "docs"}, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_ask_streams_over_http(server):
    url, _, reader = server
    events: list[tuple[str, dict]] = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {reader}"}) as client:
        body = {"question": "Where is the Eiffel Tower?", "collection": "docs", "stream": True}
        with client.stream("POST", "/ask", json=body) as r:
            assert r.status_code == 200
            event = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    events.append((event, json.loads(line[6:])))
    assert events[0][0] == "references" and events[-1][0] == "done"
    assert events[-1][1]["citations"][0]["doc_id"] == "eiffel"


def test_openai_client_non_stream_and_stream(server):
    openai = pytest.importorskip("openai")
    url, _, reader = server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=reader, max_retries=0)
    assert [m.id for m in client.models.list()] == ["zhiku/docs"]
    messages = [{"role": "user", "content": "Where is the Eiffel Tower?"}]
    completion = client.chat.completions.create(model="zhiku/docs", messages=messages)
    assert "Paris" in completion.choices[0].message.content
    ext = completion.model_extra["zhiku"]
    assert ext["citations"][0]["doc_id"] == "eiffel" and not ext["refused"]

    chunks = list(client.chat.completions.create(model="zhiku/docs", messages=messages, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == completion.choices[0].message.content
    assert chunks[-1].model_extra["zhiku"]["citations"][0]["doc_id"] == "eiffel"
    assert chunks[0].model_extra["zhiku"]["sources"][0]["doc_id"] == "eiffel"

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=messages)
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="zhiku/other", messages=messages)


def test_langchain_chain_on_as_retriever(tmp_path):
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough

    from zhiku.engine.kb import KnowledgeBase
    from zhiku.engine.llm.chat_model import GeneratorChatModel
    from zhiku.engine.llm.fake import ScriptedGenerator
    from zhiku.engine.retriever import as_retriever

    with KnowledgeBase(tmp_path, "docs", settings=fake_settings(tmp_path, store="edge")) as kb:
        kb.add_texts([d["text"] for d in DOCS], ids=[d["id"] for d in DOCS])
        retriever = as_retriever(kb, top_k=1)
        prompt = ChatPromptTemplate.from_messages(
            [("user", "Sources:\n[1] {title}\n{context}\n\nQuestion: {question}")]
        )
        model = GeneratorChatModel(generator=ScriptedGenerator())
        chain = (
            {
                "context": retriever | (lambda docs: docs[0].page_content),
                "title": retriever | (lambda docs: docs[0].metadata["doc_id"]),
                "question": RunnablePassthrough(),
            }
            | prompt
            | model
            | StrOutputParser()
        )
        assert chain.invoke("Where is the Eiffel Tower?") == "The Eiffel Tower is in Paris. [1]"
        docs = retriever.invoke("Great Wall")
        assert docs[0].metadata["doc_id"] == "great-wall"
        import asyncio

        adocs = asyncio.run(retriever.ainvoke("Great Wall"))
        assert [d.id for d in adocs] == [d.id for d in docs]


def test_zhiku_serve_subprocess(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "ZHIKU_EMBED__BACKEND": "fake",
        "ZHIKU_LLM__BACKEND": "fake",
        "ZHIKU_STORE__BACKEND": "edge",
    }
    code = "import typer; from zhiku.cli.serve import serve; typer.run(serve)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", str(port), "--data-dir", str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
        r = httpx.post(f"{url}/documents", json={"collection": "c", "documents": [{"id": "x", "text": "hello zhiku"}]})
        assert r.status_code == 201
        assert httpx.post(f"{url}/search", json={"query": "hello", "collection": "c"}).json()["hits"][0]["doc_id"] == "x"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert "loopback" in out
    assert proc.returncode == 0, out
