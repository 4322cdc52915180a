"""The server store made for many replicas: retries, racing creates, cluster layout, one-trip hybrid.

Troubleshooting: no Qdrant server runs here. The retry policy and the cluster
settings are tested against fake clients that record calls and raise what a
server would; races and the one-round-trip hybrid search run on qdrant-client's
local mode (`:memory:`), the real query engine a server-store test can reach.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from zhiku.engine.errors import AlreadyExists, InvalidRequest, NotFound
from zhiku.engine.kb import KnowledgeBase
from zhiku.engine.settings import StoreSettings, load_settings
from zhiku.engine.stores import ensure_collection
from zhiku.engine.stores import server as server_mod
from zhiku.engine.stores.base import INDEXED_FIELDS, BatchedLegs, CollectionSpec
from zhiku.engine.stores.retry import RetryingClient, RetryPolicy, is_transient
from zhiku.engine.stores.server import ServerStore, _translated

from store_helpers import DIM


def http_error(status: int) -> UnexpectedResponse:
    return UnexpectedResponse(status, "x", b"{}", httpx.Headers())


class GrpcError(Exception):
    """Shaped like grpc.RpcError: code() returns a StatusCode-like object with a name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._name = name

    def code(self) -> Any:
        return type("StatusCode", (), {"name": self._name})()

    def details(self) -> str:
        return f"grpc {self._name}"


class Script:
    """A callable that raises the scripted errors in turn, then returns 'ok'."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def policy(retries: int = 3, sleeps: list[float] | None = None) -> RetryPolicy:
    record = sleeps if sleeps is not None else []
    return RetryPolicy(retries=retries, base_s=0.1, max_s=0.3, sleep=record.append, jitter=lambda: 1.0)


# -- the retry policy -----------------------------------------------------------


TRANSIENT = [
    http_error(503),
    http_error(502),
    http_error(504),
    ResponseHandlingException(httpx.ConnectError("connection refused")),
    ResponseHandlingException(httpx.ReadTimeout("timed out")),
    httpx.ConnectError("connection refused"),
    ConnectionRefusedError(111, "refused"),
    TimeoutError("timed out"),
    GrpcError("UNAVAILABLE"),
    GrpcError("DEADLINE_EXCEEDED"),
]
PERMANENT = [
    http_error(400),
    http_error(401),
    http_error(403),
    http_error(404),
    http_error(409),
    http_error(422),
    http_error(429),
    http_error(500),
    ResponseHandlingException(ValueError("response did not parse")),
    GrpcError("INVALID_ARGUMENT"),
    GrpcError("NOT_FOUND"),
    ValueError("Collection x not found"),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=repr)
def test_transient_failures_are_retried_then_succeed(error: BaseException) -> None:
    assert is_transient(error)
    fn, sleeps = Script(error, error), []
    assert policy(sleeps=sleeps).call(fn) == "ok"
    assert fn.calls == 3 and sleeps == [0.1, 0.2]


@pytest.mark.parametrize("error", PERMANENT, ids=repr)
def test_4xx_and_other_errors_are_never_retried(error: BaseException) -> None:
    assert not is_transient(error)
    fn, sleeps = Script(error), []
    with pytest.raises(type(error)):
        policy(sleeps=sleeps).call(fn)
    assert fn.calls == 1 and sleeps == []


def test_retries_stop_at_the_limit_and_raise_the_last_failure() -> None:
    last = http_error(503)
    fn, sleeps = Script(http_error(503), http_error(503), http_error(503), last, http_error(503)), []
    with pytest.raises(UnexpectedResponse) as caught:
        policy(retries=3, sleeps=sleeps).call(fn)
    assert caught.value is last and fn.calls == 4
    assert sleeps == [0.1, 0.2, 0.3]  # exponential, capped at max_s


def test_zero_retries_means_one_attempt() -> None:
    fn = Script(http_error(503))
    with pytest.raises(UnexpectedResponse):
        policy(retries=0).call(fn)
    assert fn.calls == 1


def test_jitter_stays_between_half_and_full_delay() -> None:
    low = RetryPolicy(base_s=1.0, max_s=10.0, jitter=lambda: 0.0)
    high = RetryPolicy(base_s=1.0, max_s=10.0, jitter=lambda: 1.0)
    assert [low.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 5.0]
    assert [high.delay(n) for n in range(5)] == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_retrying_client_wraps_every_method_and_passes_attributes() -> None:
    class Client:
        limit = 7

        def __init__(self) -> None:
            self.search = Script(http_error(503))

    inner = Client()
    client = RetryingClient(inner, policy())
    assert client.search("q", k=1) == "ok" and inner.search.calls == 2
    assert client.limit == 7 and client.wrapped is inner


# -- the store on a (fake) remote server -----------------------------------------


class FakeQdrant:
    """Records constructor options and calls; answers like a server would."""

    instances: list["FakeQdrant"] = []

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.existing: set[str] = set()
        self.failures: dict[str, list[BaseException]] = {}
        FakeQdrant.instances.append(self)

    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args, kwargs))
        queued = self.failures.get(name)
        if queued:
            raise queued.pop(0)

    def collection_exists(self, name: str) -> bool:
        self._record("collection_exists", name)
        return name in self.existing

    def create_collection(self, name: str, **kwargs: Any) -> bool:
        self._record("create_collection", name, **kwargs)
        self.existing.add(name)
        return True

    def create_payload_index(self, name: str, field: str, *args: Any, **kwargs: Any) -> None:
        self._record("create_payload_index", name, field)

    def close(self) -> None:
        pass


@pytest.fixture
def fake_remote(monkeypatch: pytest.MonkeyPatch) -> type[FakeQdrant]:
    FakeQdrant.instances = []
    monkeypatch.setattr(server_mod, "QdrantClient", FakeQdrant)
    return FakeQdrant


def remote_store(**settings: Any) -> ServerStore:
    base: dict[str, Any] = {"backend": "server", "url": "http://qdrant:6333", "retry_backoff_s": 0.0}
    return ServerStore(StoreSettings(**{**base, **settings}))


def test_remote_client_gets_timeout_grpc_and_retries(fake_remote: type[FakeQdrant]) -> None:
    store = remote_store(timeout_s=2.5, prefer_grpc=True, grpc_port=7334, api_key="k", retries=5)
    assert isinstance(store.client, RetryingClient)
    options = store.client.wrapped.options
    assert options == {
        "url": "http://qdrant:6333", "api_key": "k", "timeout": 3, "prefer_grpc": True, "grpc_port": 7334,
    }
    assert store.client._policy.retries == 5


def test_local_mode_is_not_wrapped() -> None:
    store = ServerStore(StoreSettings(backend="server", url=":memory:"))
    try:
        assert not isinstance(store.client, RetryingClient)
    finally:
        store.close()


def test_create_sends_the_cluster_layout(fake_remote: type[FakeQdrant]) -> None:
    store = remote_store(shard_number=6, replication_factor=2, write_consistency_factor=2)
    store.create_collection(CollectionSpec("kb", DIM))
    client = fake_remote.instances[0]
    (create,) = [c for c in client.calls if c[0] == "create_collection"]
    assert {k: create[2][k] for k in ("shard_number", "replication_factor", "write_consistency_factor")} == {
        "shard_number": 6, "replication_factor": 2, "write_consistency_factor": 2,
    }
    indexed = [c[1][1] for c in client.calls if c[0] == "create_payload_index"]
    assert indexed == list(INDEXED_FIELDS)


def test_default_layout_is_left_to_qdrant(fake_remote: type[FakeQdrant]) -> None:
    remote_store().create_collection(CollectionSpec("kb", DIM))
    (create,) = [c for c in fake_remote.instances[0].calls if c[0] == "create_collection"]
    assert create[2]["shard_number"] is None and create[2]["replication_factor"] is None


def test_a_create_is_retried_through_a_503(fake_remote: type[FakeQdrant]) -> None:
    store = remote_store()
    fake_remote.instances[0].failures["create_collection"] = [http_error(503)]
    store.create_collection(CollectionSpec("kb", DIM))
    assert [c[0] for c in fake_remote.instances[0].calls].count("create_collection") == 2


def test_a_create_that_lost_the_race_is_already_exists_and_still_indexed(fake_remote: type[FakeQdrant]) -> None:
    """The server answers 409 when another replica created the collection first."""
    store = remote_store()
    client = fake_remote.instances[0]
    client.failures["create_collection"] = [http_error(409)]
    with pytest.raises(AlreadyExists):
        store.create_collection(CollectionSpec("kb", DIM))
    assert [c[1][1] for c in client.calls if c[0] == "create_payload_index"] == list(INDEXED_FIELDS)
    client.failures["create_collection"] = [http_error(409)]
    assert ensure_collection(store, CollectionSpec("kb2", DIM)) is False


def test_a_4xx_on_create_is_not_retried(fake_remote: type[FakeQdrant]) -> None:
    store = remote_store(retries=3)
    client = fake_remote.instances[0]
    client.failures["create_collection"] = [http_error(400)]
    with pytest.raises(InvalidRequest):
        store.create_collection(CollectionSpec("kb", DIM))
    assert [c[0] for c in client.calls].count("create_collection") == 1


@pytest.mark.parametrize(
    ("error", "domain"),
    [(GrpcError("NOT_FOUND"), NotFound), (GrpcError("ALREADY_EXISTS"), AlreadyExists),
     (GrpcError("INVALID_ARGUMENT"), InvalidRequest), (http_error(409), AlreadyExists)],
)
def test_grpc_and_conflict_errors_become_domain_errors(error: Exception, domain: type) -> None:
    with pytest.raises(domain):
        with _translated("kb"):
            raise error


def test_settings_refuse_more_acks_than_copies() -> None:
    with pytest.raises(ValidationError, match="write_consistency_factor"):
        StoreSettings(replication_factor=2, write_consistency_factor=3)
    with pytest.raises(ValidationError):
        StoreSettings(write_consistency_factor=2)  # one copy by default
    assert StoreSettings(replication_factor=3, write_consistency_factor=2).write_consistency_factor == 2


def test_cluster_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_STORE__SHARD_NUMBER", "6")
    monkeypatch.setenv("ZHIKU_STORE__REPLICATION_FACTOR", "2")
    monkeypatch.setenv("ZHIKU_STORE__PREFER_GRPC", "true")
    store = load_settings().store
    assert (store.shard_number, store.replication_factor, store.prefer_grpc) == (6, 2, True)


# -- racing creators on the real local engine ---------------------------------------


def test_two_racing_creators_both_succeed_and_one_collection_results() -> None:
    """Both replicas check before either creates (a barrier forces it); both succeed."""
    store = ServerStore(StoreSettings(backend="server", url=":memory:"))
    real_exists = store.client.collection_exists
    both_checked = threading.Barrier(2)

    def exists_then_wait(name: str) -> bool:
        seen = real_exists(name)
        both_checked.wait(timeout=10)
        return seen

    store.client.collection_exists = exists_then_wait  # type: ignore[method-assign]
    results: list[bool] = []
    errors: list[BaseException] = []

    def creator() -> None:
        try:
            results.append(ensure_collection(store, CollectionSpec("kb", DIM)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=creator) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    try:
        assert errors == []
        assert sorted(results) == [False, True]
        store.client.collection_exists = real_exists  # type: ignore[method-assign]
        assert store.list_collections() == ["kb"]
    finally:
        store.close()


def test_the_race_loser_without_ensure_gets_already_exists() -> None:
    """What ensure_collection absorbs: the store itself still says AlreadyExists."""
    store = ServerStore(StoreSettings(backend="server", url=":memory:"))
    try:
        store.create_collection(CollectionSpec("kb", DIM))
        store.client.collection_exists = lambda name: False  # type: ignore[method-assign]
        with pytest.raises(AlreadyExists):
            store.create_collection(CollectionSpec("kb", DIM))
    finally:
        store.close()


# -- hybrid search in one round trip ------------------------------------------------

TEXTS = {
    "fox": "The quick brown fox jumps over the lazy dog near the river bank.",
    "cat": "Cats sleep most of the day and hunt mice at night.",
    "dog": "Dogs guard the house and bark at the fox in the garden.",
    "bj": "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "sh": "上海是中国最大的经济中心城市，位于长江入海口。",
    "py": "Python is a programming language that emphasises readable code.",
    "river": "The river bank floods each spring when the snow melts.",
}


@pytest.fixture
def server_kb(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = {"backend": "server", "url": ":memory:"}
    with KnowledgeBase(tmp_path, "t", embed__backend="fake", store=store) as kb:
        kb.add_texts(list(TEXTS.values()), ids=list(TEXTS),
                     metadatas=[{"lang": "zh" if k in ("bj", "sh") else "en"} for k in TEXTS])
        yield kb


def test_the_server_store_offers_batched_legs(server_kb: KnowledgeBase, tmp_path: Path) -> None:
    assert isinstance(server_kb.store, BatchedLegs) and server_kb.searcher.batched
    with KnowledgeBase(tmp_path / "edge", "t", embed__backend="fake") as edge:
        assert not edge.searcher.batched


@pytest.mark.parametrize("fusion", ["convex", "rrf", "dbsf"])
@pytest.mark.parametrize(
    ("query", "filters"),
    [("the fox by the river", None), ("cats hunt mice", {"lang": "en"}), ("首都和文化中心", None),
     ("zzzz qqqq", None), ("，。", None)],
)
def test_one_round_trip_equals_two_calls(
    server_kb: KnowledgeBase, fusion: str, query: str, filters: dict[str, str] | None
) -> None:
    """Same hits, same scores (exactly) as the dense and BM25 legs sent separately."""
    client = server_kb.store.client
    sent: list[str] = []
    for method in ("query_points", "query_batch_points"):
        real = getattr(client, method)
        setattr(client, method, lambda *a, _real=real, _m=method, **kw: (sent.append(_m), _real(*a, **kw))[1])
    one_trip = server_kb.search(query, top_k=5, fusion=fusion, filters=filters, alpha=0.4)
    assert sent == ["query_batch_points"]
    server_kb.searcher.batched = False
    sent.clear()
    two_calls = server_kb.search(query, top_k=5, fusion=fusion, filters=filters, alpha=0.4)
    assert sent.count("query_points") >= 1 and "query_batch_points" not in sent
    assert [(h.chunk_id, h.score) for h in one_trip] == [(h.chunk_id, h.score) for h in two_calls]


def test_batched_legs_match_each_single_leg(server_kb: KnowledgeBase) -> None:
    from zhiku.engine.bm25 import encode_query
    from zhiku.engine.tokenize import tokenize

    store, name = server_kb.store, server_kb.collection
    vector = server_kb.embedder.embed_query("fox river")
    sparse = encode_query(tokenize("fox river"))
    dense_hits, bm25_hits = store.query_legs(name, vector, sparse, 5, (), True)  # type: ignore[attr-defined]
    assert dense_hits == store.query_dense(name, vector, 5)
    assert bm25_hits == store.query_sparse(name, sparse, 5)
    assert store.query_legs(name, vector, None, 5)[1] == []  # type: ignore[attr-defined]
    with pytest.raises(NotFound):
        store.query_legs("missing", vector, sparse, 5)  # type: ignore[attr-defined]


# -- zhiku serve --workers N with the server store ------------------------------------


def test_serve_starts_n_workers_from_the_environment_with_the_server_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer
    import uvicorn
    from typer.testing import CliRunner

    from zhiku.cli.serve import serve

    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setenv("ZHIKU_STORE__BACKEND", "server")
    monkeypatch.setenv("ZHIKU_STORE__URL", "http://qdrant:6333")
    app = typer.Typer()
    app.command()(serve)
    r = CliRunner().invoke(app, ["--workers", "3", "--data-dir", str(tmp_path), "--port", "8123"])
    assert r.exit_code == 0, r.output
    ((target, options),) = calls
    assert target == "zhiku.api.app:create_app_from_env"
    assert options["factory"] is True and options["workers"] == 3 and options["port"] == 8123
    # What each worker builds its app from:
    assert load_settings().store.url == "http://qdrant:6333"


@pytest.mark.integration
def test_two_workers_serve_one_port(tmp_path: Path) -> None:
    """A real `zhiku serve --workers 2` on the server store: both workers up, /readyz ok."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import psutil

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "ZHIKU_STORE__BACKEND": "server", "ZHIKU_STORE__URL": ":memory:",
           "ZHIKU_EMBED__BACKEND": "fake", "ZHIKU_LLM__BACKEND": "fake"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "zhiku"), "serve", "--workers", "2", "--port", str(port),
         "--data-dir", str(tmp_path), "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline, ready = time.monotonic() + 120, False
        while time.monotonic() < deadline and not ready:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                time.sleep(0.3)
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        assert ready
        children = psutil.Process(proc.pid).children(recursive=True)
        workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2
        for _ in range(10):
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
