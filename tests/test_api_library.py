"""Library surface used by the server: async twins, the LangChain retriever, SSE helpers."""

from __future__ import annotations

import asyncio
import json
import threading

from api_support import DOCS, fake_settings

from zhiku.api.routers.openai_compat import collection_of, split_messages
from zhiku.api.schemas.requests import ChatMessage
from zhiku.api.sse import sse_event
from zhiku.engine.aio import aiterate, aiterate_call, run_in_thread
from zhiku.engine.errors import InvalidRequest, NotFound


class Counter:
    def __init__(self) -> None:
        self.threads: list[str] = []

    def add(self, a: int, b: int = 0) -> int:
        """Add two numbers."""
        self.threads.append(threading.current_thread().name)
        return a + b

    aadd = run_in_thread(add)

    def count(self, n: int):  # type: ignore[no-untyped-def]
        for i in range(n):
            self.threads.append(threading.current_thread().name)
            yield i

    acount = aiterate_call(count)


def test_run_in_thread_is_the_same_body_off_the_loop():
    c = Counter()
    assert asyncio.run(c.aadd(2, b=3)) == 5
    assert c.threads[0] != threading.current_thread().name
    assert "add" in Counter.aadd.__doc__


def test_aiterate_pulls_a_blocking_iterator():
    async def collect():  # type: ignore[no-untyped-def]
        return [x async for x in Counter().acount(4)]

    assert asyncio.run(collect()) == [0, 1, 2, 3]

    async def empty():  # type: ignore[no-untyped-def]
        return [x async for x in aiterate(iter(()))]

    assert asyncio.run(empty()) == []


def test_retriever_maps_hits_to_documents(tmp_path):
    from zhiku.engine.kb import KnowledgeBase
    from zhiku.engine.retriever import ZhikuRetriever, as_retriever

    with KnowledgeBase(tmp_path, "docs", settings=fake_settings(tmp_path)) as kb:
        kb.add_texts([d["text"] for d in DOCS], ids=[d["id"] for d in DOCS], metadatas=[d["metadata"] for d in DOCS])
        retriever = as_retriever(kb, top_k=2, filters={"lang": "en"})
        assert isinstance(retriever, ZhikuRetriever)
        docs = retriever.invoke("Eiffel Tower Paris")
        assert len(docs) == 2 and all(d.metadata["lang"] == "en" for d in docs)
        assert docs[0].metadata["doc_id"] == "eiffel" and docs[0].id == docs[0].metadata["chunk_id"]
        assert "score" in docs[0].metadata


def test_sse_event_wire_format():
    assert sse_event("token", {"text": "a\nb"}) == b'event: token\ndata: {"text":"a\\nb"}\n\n'
    assert sse_event(None, "[DONE]") == b"data: [DONE]\n\n"
    assert json.loads(sse_event("x", {"t": "中文"}).decode().split("data: ")[1]) == {"t": "中文"}


def test_openai_model_names_and_messages():
    assert collection_of("zhiku/docs") == "docs"
    for bad in ("gpt-4o", "zhiku/", "docs"):
        try:
            collection_of(bad)
        except NotFound:
            continue
        raise AssertionError(bad)
    msgs = [
        ChatMessage(role="system", content="be brief"),
        ChatMessage(role="user", content=[{"type": "text", "text": "first"}]),
        ChatMessage(role="assistant", content="reply"),
        ChatMessage(role="user", content="follow-up"),
    ]
    question, history = split_messages(msgs)
    assert question == "follow-up"
    assert history == [{"role": "user", "content": "first"}, {"role": "assistant", "content": "reply"}]
    try:
        split_messages([ChatMessage(role="assistant", content="hi")])
    except InvalidRequest:
        pass
    else:
        raise AssertionError("an assistant-last conversation must be refused")


def test_jobs_orphaned_by_a_dead_process_are_failed_at_start(tmp_path):
    import os
    from datetime import datetime, timezone

    from zhiku.api.jobs import JobRunner, safe_filename
    from zhiku.api.metrics import Metrics
    from zhiku.api.schemas.stored import JobRecord

    jobs = tmp_path / "jobs"
    jobs.mkdir()
    now = datetime.now(timezone.utc)
    orphan = JobRecord(id="a" * 32, collection="c", state="running", created_at=now, pid=0)
    owned = JobRecord(id="b" * 32, collection="c", state="running", created_at=now, pid=os.getppid())
    for job in (orphan, owned):
        (jobs / f"{job.id}.json").write_text(job.model_dump_json())
    runner = JobRunner(tmp_path, Metrics())
    try:
        assert runner.get("a" * 32).state == "failed"
        assert runner.get("b" * 32).state == "running"  # another live worker owns it
    finally:
        runner.close()
    assert safe_filename("../../etc/passwd", 0) == "passwd"
    assert safe_filename("..", 3) == "upload-3"
    assert safe_filename("报告 v2.md", 0) == "报告_v2.md"
