"""Re-index with an alias switch, snapshot/restore and migrate, on both stores.

Troubleshooting: these run on the fake embedder (fake_dim picks the "model")
and the scripted LLM; a failure in the concurrent re-index test lists the
errors the searching thread saw.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from typer.testing import CliRunner

from zhiku.engine.backup import migrate, restore_embedded, same_ranking, snapshot_embedded, verify_copy
from zhiku.engine.engine import Engine
from zhiku.engine.errors import AlreadyExists, InvalidRequest, NotFound
from zhiku.engine.identity import indexed_text
from zhiku.engine.reindex import chunk_from_payload, copy_collection, reindex
from zhiku.engine.settings import Settings, StoreSettings, load_settings
from zhiku.engine.stores.base import CollectionSpec, version_name, version_of
from zhiku.engine.stores.edge import EdgeStore
from zhiku.engine.stores.server import ServerStore
from zhiku.engine.types import ScoredPoint

from zhiku.library import read_files

from store_helpers import point

TOPICS = ["cats", "dogs", "rivers", "stars", "bread", "trains", "music", "rain"]
# Lengths and term counts vary, so few documents tie on a score.
TEXTS = [
    f"note {i} about {TOPICS[i % 8]} and {TOPICS[(i * 3) % 8]} with word{i % 13} "
    + " ".join(f"filler{j}" for j in range(i % 11)) + f" {TOPICS[i % 5]}" * (i % 4)
    for i in range(120)
]
QUERIES = [f"{TOPICS[i % 8]} word{i % 13}" for i in range(100)]


def make_settings(tmp_path: Path, backend: str = "edge", dim: int = 16) -> Settings:
    store: dict[str, Any] = {"backend": backend}
    if backend == "server":
        store["url"] = ":memory:"
    return load_settings(data_dir=tmp_path, embed={"backend": "fake", "fake_dim": dim}, llm={"backend": "fake"},
                         store=store)


@pytest.fixture(params=["edge", "server"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    engine = Engine(make_settings(tmp_path, request.param))
    engine.kb("docs", create=True).add_texts(TEXTS, ids=[f"d{i}" for i in range(len(TEXTS))])
    yield engine
    engine.close()


def scored(engine: Engine, query: str, mode: str) -> list[ScoredPoint]:
    return [ScoredPoint(h.chunk_id, h.score, {}) for h in engine.kb("docs").search(query, top_k=10, mode=mode)]


def top(engine: Engine, name: str, query: str, mode: str = "hybrid") -> list[str]:
    return [h.chunk_id for h in engine.kb(name).search(query, top_k=10, mode=mode)]


# -- aliases in the stores ---------------------------------------------------------


@pytest.mark.parametrize("backend", ["edge", "server"])
def test_alias_set_move_resolve_delete(tmp_path: Path, backend: str) -> None:
    store = EdgeStore(tmp_path, StoreSettings()) if backend == "edge" else ServerStore(
        StoreSettings(backend="server", url=":memory:"))
    for name in ("c.v2", "c.v3"):
        store.create_collection(CollectionSpec(name, 8))
    assert store.resolve("c") == "c"
    store.set_alias("c", "c.v2")
    assert store.resolve("c") == "c.v2" and store.aliases() == {"c": "c.v2"}
    store.set_alias("c", "c.v3")
    assert store.resolve("c") == "c.v3"
    with pytest.raises(NotFound):
        store.set_alias("c", "missing")
    assert store.resolve("c") == "c.v3"  # a refused switch changes nothing
    store.delete_alias("c")
    store.delete_alias("c")  # unknown: ignored
    assert store.aliases() == {} and store.resolve("c") == "c"
    store.close()


@pytest.mark.parametrize("backend", ["edge", "server"])
def test_scroll_points_round_trips_vectors(tmp_path: Path, backend: str) -> None:
    store = EdgeStore(tmp_path, StoreSettings()) if backend == "edge" else ServerStore(
        StoreSettings(backend="server", url=":memory:"))
    store.create_collection(CollectionSpec("a", 8))
    store.upsert("a", [point(n, terms={10 + n: 0.5, 99: 1.5}) for n in range(5)])
    got = {p.id: p for p in store.scroll_points("a", batch=2)}
    assert len(got) == 5
    original = point(3, terms={13: 0.5, 99: 1.5})
    assert np.allclose(got[original.id].dense, original.dense)
    assert got[original.id].sparse == original.sparse
    assert got[original.id].payload == original.payload
    store.close()


def test_version_names() -> None:
    assert version_name("docs", 3) == "docs.v3"
    assert version_of("docs.v3", "docs") == 3
    assert version_of("docs.v3", "doc") is None and version_of("docs", "docs") is None


def test_chunk_from_payload_inverts_payload() -> None:
    payload = point(1, title="t").payload | {"chunk_count": 1, "title": "T", "section": "s"}
    made = chunk_from_payload(payload).payload()
    # Every stored field comes back; `language` is derived from the text.
    assert made.items() >= payload.items() and set(made) - set(payload) <= {"language"}
    assert chunk_from_payload(made).payload() == made


# -- re-index ----------------------------------------------------------------------


def test_reindex_switches_model_and_keeps_old_until_drop(engine: Engine) -> None:
    before = engine.kb("docs")
    result = reindex(engine, "docs", engine.settings.embed.model_copy(update={"fake_dim": 24}))
    # The server store first moves a plain collection behind the alias, as version 1.
    old = "docs" if isinstance(engine.store, EdgeStore) else "docs.v1"
    assert (result.old, result.new, result.chunks) == (old, "docs.v2", len(TEXTS))
    kb = engine.kb("docs")
    assert kb is not before and kb.collection == "docs.v2"
    assert kb.embedder.model_id == "fake-hash-24" and kb.manifest.embedder["dim"] == 24
    assert engine.list_collections() == ["docs"]
    assert engine.store.has_collection(old)  # kept until drop_old
    assert top(engine, "docs", "cats word1")  # searches the new version
    reindex(engine, "docs", engine.settings.embed.model_copy(update={"fake_dim": 8}), drop_old=True)
    assert engine.versions("docs") == ["docs.v3"]
    assert engine.kb("docs").embedder.dim == 8


def test_dense_scores_after_reindex_come_from_the_new_model(engine: Engine) -> None:
    reindex(engine, "docs", engine.settings.embed.model_copy(update={"fake_dim": 24}))
    kb = engine.kb("docs")
    q = kb.embedder.embed_query("cats word3")
    for hit in kb.search("cats word3", top_k=5, mode="dense"):
        doc = kb.embedder.embed_documents([indexed_text(chunk_from_payload(_payload(kb, hit.chunk_id)))])[0]
        cosine = float(q @ doc / (np.linalg.norm(q) * np.linalg.norm(doc)))
        assert hit.score == pytest.approx(cosine, abs=1e-4)


def _payload(kb: Any, chunk_id: str) -> dict[str, Any]:
    return next(p for _, p in kb.store.scroll(kb.collection) if p["chunk_id"] == chunk_id)


def reindex_under_load(
    engine: Engine, name: str, queries: list[str], embed: Any, pause_s: float = 0.0, **kw: Any
) -> tuple[list[str], list[str]]:
    """Re-index while a thread searches (and every 5th time asks) without pause, until
    20 requests after the switch; returns (errors, model id behind each request)."""
    errors: list[str] = []
    served: list[str] = []
    stop = threading.Event()

    def load() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                kb = engine.kb(name)
                if i % 5 == 0:
                    assert kb.ask(queries[i % len(queries)]) is not None
                else:
                    assert kb.search(queries[i % len(queries)], top_k=5, mode="dense")
                served.append(kb.embedder.model_id)
            except Exception as exc:  # every failure is the test's business
                errors.append(f"{type(exc).__name__}: {exc}")
            stop.wait(pause_s)

    thread = threading.Thread(target=load)
    thread.start()
    try:
        reindex(engine, name, embed, **kw)
        after = len(served)
        while len(served) < after + 20 and thread.is_alive():
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join()
    return errors, served


def test_reindex_under_load_fails_no_request_and_never_mixes_models(tmp_path: Path) -> None:
    engine = Engine(make_settings(tmp_path, "edge"))
    engine.kb("docs", create=True).add_texts(TEXTS, ids=[f"d{i}" for i in range(len(TEXTS))])
    embed = engine.settings.embed.model_copy(update={"fake_dim": 24})
    errors, served = reindex_under_load(engine, "docs", QUERIES, embed, drop_old=True)
    assert errors == []
    assert "fake-hash-16" in served and served[-1] == "fake-hash-24"
    assert set(served[served.index("fake-hash-24"):]) == {"fake-hash-24"}  # once switched, never back
    assert engine.versions("docs") == ["docs.v2"]
    engine.close()


def test_reindex_writes_during_the_build_are_caught_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import zhiku.engine.reindex as module

    engine = Engine(make_settings(tmp_path))
    kb = engine.kb("docs", create=True)
    kb.add_texts(TEXTS[:20], ids=[f"d{i}" for i in range(20)])
    copy = module._copy_chunks

    def copy_then_write(*args: Any, **kw: Any) -> int:
        done = copy(*args, **kw)
        if args[3]:  # the main copy, not the catch-up: a writer changes the live version
            kb.add_texts(["a brand new note about comets"], ids=["new"])
            kb.add_texts(["note 3 rewritten about comets"], ids=["d3"])
            kb.delete(["d4"])
        return done

    monkeypatch.setattr(module, "_copy_chunks", copy_then_write)
    result = reindex(engine, "docs", engine.settings.embed.model_copy(update={"fake_dim": 24}))
    assert result.caught_up == 3
    new = engine.kb("docs")
    assert new.count_documents() == 20
    assert "comets" in new.get_document("d3").text
    with pytest.raises(NotFound):
        new.get_document("d4")
    engine.close()


def test_rechunk_without_source_files_is_refused_and_builds_nothing(engine: Engine) -> None:
    with pytest.raises(InvalidRequest, match="original files"):
        reindex(engine, "docs", engine.settings.embed, chunk_size=64, read_files=read_files)
    assert engine.versions("docs") == ["docs"]
    assert engine.store.resolve("docs") == "docs"


def test_rechunk_reads_the_original_files(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    for i in range(3):
        (folder / f"f{i}.txt").write_text(" ".join(f"sentence {j} of file {i}." for j in range(200)))
    engine = Engine(make_settings(tmp_path / "data"))
    read_files(engine.kb("docs", create=True), [folder])
    before = engine.kb("docs").count()
    result = reindex(engine, "docs", engine.settings.embed, chunk_size=64, read_files=read_files)
    kb = engine.kb("docs")
    assert kb.manifest.chunk.size == 64 and result.documents == 3
    assert kb.count() > before
    engine.close()


def test_drop_collection_removes_every_version_and_the_alias(engine: Engine) -> None:
    reindex(engine, "docs", engine.settings.embed.model_copy(update={"fake_dim": 24}))
    engine.drop_collection("docs")
    assert engine.list_collections() == [] and engine.store.aliases() == {}
    with pytest.raises(NotFound):
        engine.kb("docs")


# -- snapshot, restore, migrate --------------------------------------------------------


@pytest.mark.parametrize("reindexed", [False, True])
def test_snapshot_restore_gives_identical_results(tmp_path: Path, reindexed: bool) -> None:
    engine = Engine(make_settings(tmp_path))
    engine.kb("docs", create=True).add_texts(TEXTS)
    if reindexed:
        reindex(engine, "docs", engine.settings.embed.model_copy(update={"fake_dim": 24}))
    engine.kb("docs").optimize()
    tar = snapshot_embedded(engine, "docs", tmp_path / "docs.tar")
    assert restore_embedded(engine, tar, "copy") == "copy"
    for q in QUERIES:
        assert top(engine, "copy", q) == top(engine, "docs", q)
    with pytest.raises(AlreadyExists):
        restore_embedded(engine, tar)  # "docs" is taken: nothing is overwritten
    engine.close()
    # And in a fresh process state: the restored copy reopens from disk.
    engine = Engine(make_settings(tmp_path))
    assert engine.kb("copy").count() == len(TEXTS)
    engine.close()


def test_restore_of_a_non_snapshot_is_a_clear_error(tmp_path: Path) -> None:
    engine = Engine(make_settings(tmp_path))
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar")
    with pytest.raises(InvalidRequest, match="not a zhiku snapshot"):
        restore_embedded(engine, bad, "x")
    assert engine.list_collections() == []
    engine.close()


@pytest.mark.parametrize("reindexed", [False, True])
def test_migrate_embedded_to_server_gives_identical_top10(tmp_path: Path, reindexed: bool) -> None:
    source = Engine(make_settings(tmp_path))
    source.kb("docs", create=True).add_texts(TEXTS)
    if reindexed:
        reindex(source, "docs", source.settings.embed.model_copy(update={"fake_dim": 24}))
    target = Engine(make_settings(tmp_path, "server"))
    [moved] = migrate(source, target.store, progress=lambda name: lambda done, total: None)
    assert moved.points == len(TEXTS) and moved.verification.ok and moved.verification.queries == 200
    for q in QUERIES:
        for mode in ("hybrid", "dense", "bm25"):
            # Equal scores may come back in either order from two engines.
            assert same_ranking(scored(target, q, mode), scored(source, q, mode)), (q, mode)
    with pytest.raises(AlreadyExists):
        migrate(source, target.store)  # never overwrites
    source.close()
    target.close()


def test_verification_catches_a_missing_point(tmp_path: Path) -> None:
    source = Engine(make_settings(tmp_path))
    source.kb("docs", create=True).add_texts(TEXTS)
    target = ServerStore(StoreSettings(backend="server", url=":memory:"))
    copy_collection(source.store, "docs", target, "docs")
    target.delete_points("docs", [next(iter(source.store.scroll("docs")))[0]])
    check = verify_copy(source.store, "docs", target, "docs")
    assert not check.ok and check.target_count == check.source_count - 1
    source.close()


def test_same_ranking_allows_only_tie_order() -> None:
    def sp(pairs: list[tuple[str, float]]) -> list[ScoredPoint]:
        return [ScoredPoint(i, s, {}) for i, s in pairs]

    a = sp([("a", 3.0), ("b", 2.0), ("c", 2.0), ("d", 1.0), ("e", 1.0)])
    assert same_ranking(a, sp([("a", 3.0), ("c", 2.0), ("b", 2.0), ("d", 1.0), ("f", 1.0)]))
    assert not same_ranking(a, sp([("a", 3.0), ("b", 2.0), ("x", 2.0), ("d", 1.0), ("e", 1.0)]))
    assert not same_ranking(a, sp([("a", 3.0), ("b", 2.0), ("c", 1.9), ("d", 1.0), ("e", 1.0)]))


def test_server_reindex_of_a_plain_collection_keeps_it_as_version_one(tmp_path: Path) -> None:
    engine = Engine(make_settings(tmp_path, "server"))
    engine.kb("docs", create=True).add_texts(TEXTS)
    expected = top(engine, "docs", "cats word1")
    reindex(engine, "docs", engine.settings.embed.model_copy(update={"fake_dim": 24}))
    assert engine.store.aliases() == {"docs": "docs.v2"}
    assert sorted(engine.versions("docs")) == ["docs.v1", "docs.v2"]
    old = Engine(make_settings(tmp_path, "server"), store=engine.store)
    assert top(old, "docs.v1", "cats word1") == expected  # the old version, vectors copied as they were
    engine.close()


# -- CLI ---------------------------------------------------------------------------------


def test_cli_reindex_snapshot_restore_migrate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zhiku.cli import app

    monkeypatch.setenv("ZHIKU_EMBED__BACKEND", "fake")
    monkeypatch.setenv("ZHIKU_EMBED__FAKE_DIM", "16")
    data = tmp_path / "data"
    engine = Engine(make_settings(data))
    engine.kb("docs", create=True).add_texts(TEXTS[:10])
    engine.close()
    runner = CliRunner()
    args = ["--data-dir", str(data)]
    run = runner.invoke(app, ["reindex", "-c", "docs", "--embed-backend", "fake", "--drop-old", *args])
    assert run.exit_code == 0, run.output
    assert '"new": "docs.v2"' in run.stdout
    run = runner.invoke(app, ["snapshot", "-c", "docs", "-o", str(tmp_path / "s.tar"), *args])
    assert run.exit_code == 0, run.output
    run = runner.invoke(app, ["restore", str(tmp_path / "s.tar"), "-c", "again", *args])
    assert run.exit_code == 0, run.output
    run = runner.invoke(app, ["restore", str(tmp_path / "s.tar"), *args])
    assert run.exit_code == 1 and "already exists" in run.output
    run = runner.invoke(app, ["migrate", "--from-data-dir", str(data), "--to-url", str(tmp_path / "qdrant")])
    assert run.exit_code == 0, run.output
    assert run.stdout.count('"ok": true') == 2
    run = runner.invoke(app, ["reindex", "-c", "nope", "--embed-backend", "fake", *args])
    assert run.exit_code == 1 and "does not exist" in run.output


# -- HTTP admin job -----------------------------------------------------------------------


@pytest.mark.parametrize("store", ["edge", "server"])
def test_http_reindex_job_while_searching_and_asking(tmp_path: Path, store: str) -> None:
    import time

    from api_support import api_client, fake_settings

    with api_client(fake_settings(tmp_path, store)) as client:
        errors: list[str] = []
        stop = threading.Event()

        def load() -> None:
            i = 0
            while not stop.is_set():
                i += 1
                path, body = ("/ask", {"collection": "docs", "question": "Where is the Eiffel Tower?"}) if i % 4 == 0 \
                    else ("/search", {"collection": "docs", "query": "Eiffel Tower Paris", "mode": "dense"})
                r = client.post(path, json=body)
                if r.status_code != 200:
                    errors.append(f"{path} {r.status_code} {r.text[:200]}")

        thread = threading.Thread(target=load)
        thread.start()
        try:
            r = client.post("/admin/reindex", json={"collection": "docs", "embed_backend": "fake", "drop_old": True})
            assert r.status_code == 202, r.text
            job_url = r.headers["location"]
            for _ in range(600):
                job = client.get(job_url).json()
                if job["state"] in ("succeeded", "failed"):
                    break
                time.sleep(0.05)
            time.sleep(0.3)  # requests after the switch
        finally:
            stop.set()
            thread.join()
        assert job["state"] == "succeeded", job
        assert "docs.v2" in job["message"]
        assert errors == []
        info = client.get("/collections/docs").json()
        assert info["chunks"] == 3
        assert [c["name"] for c in client.get("/collections").json()["collections"]] == ["docs"]
        bad = client.post("/admin/reindex", json={"collection": "docs", "embed_backend": "nope"})
        assert bad.status_code == 422
        missing = client.post("/admin/reindex", json={"collection": "nope", "embed_backend": "fake"})
        assert missing.status_code == 404


# -- real models ------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.timeout(1200)  # 8.5 min measured with 8 jobs sharing 2 cores; far less on an idle CI box
def test_reindex_minilm_to_e5_under_load_real_models(tmp_path: Path, shared_data: Path) -> None:
    """MiniLM -> multilingual-e5-small on 100 squad-dev passages while a thread searches and asks."""
    import json

    rows = [json.loads(line) for line in (shared_data / "retrieval/squad-dev/corpus.jsonl").open()][:100]
    questions = [json.loads(line)["text"] for line in (shared_data / "retrieval/squad-dev/queries.jsonl").open()][:50]
    # Raw cosine scores (no title boost), so hits can be checked against the new model below.
    settings = load_settings(data_dir=tmp_path, llm={"backend": "fake"}, retrieval={"title_boost": 0.0})
    engine = Engine(settings)
    engine.kb("squad", create=True).add_texts([r["text"] for r in rows], ids=[r["_id"] for r in rows],
                                              metadatas=[{"title": r.get("title", "")} for r in rows])
    chunks = engine.kb("squad").count()
    # A short pause between requests leaves the re-index some of two shared cores.
    e5 = settings.embed.model_copy(update={"backend": "e5-small"})
    errors, models = reindex_under_load(engine, "squad", questions, e5, pause_s=0.02)
    assert errors == [] and engine.kb("squad").count() == chunks
    new_id = engine.kb("squad").embedder.model_id
    assert new_id != models[0] and models[-1] == new_id
    assert set(models[models.index(new_id):]) == {new_id}
    kb = engine.kb("squad")
    q = kb.embedder.embed_query(questions[0])
    for hit in kb.search(questions[0], top_k=5, mode="dense"):
        doc = kb.embedder.embed_documents([indexed_text(chunk_from_payload(_payload(kb, hit.chunk_id)))])[0]
        assert hit.score == pytest.approx(float(q @ doc / np.linalg.norm(doc)), abs=1e-3)
    engine.close()


def test_a_failed_build_leaves_no_version_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import zhiku.engine.reindex as module

    engine = Engine(make_settings(tmp_path))
    engine.kb("docs", create=True).add_texts(TEXTS[:10])

    def broken(*args: Any, **kw: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(module, "_copy_chunks", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        reindex(engine, "docs", engine.settings.embed.model_copy(update={"fake_dim": 24}))
    assert engine.versions("docs") == ["docs"] and engine.store.aliases() == {}
    assert engine.kb("docs").count() == 10  # still served, untouched
    engine.close()


def test_server_snapshot_and_restore_use_qdrants_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """qdrant-client's local mode has no snapshots, so the client's two calls are stubbed here."""
    from types import SimpleNamespace

    from zhiku.engine.backup import restore_server, snapshot_server

    engine = Engine(make_settings(tmp_path, "server"))
    engine.kb("docs", create=True).add_texts(TEXTS[:5])
    reindex(engine, "docs", engine.settings.embed.model_copy(update={"fake_dim": 24}))
    calls: list[tuple[str, ...]] = []
    client = engine.store.client  # type: ignore[attr-defined]
    monkeypatch.setattr(client, "create_snapshot", lambda name, wait: calls.append(("create", name))
                        or SimpleNamespace(name=f"{name}-1.snapshot"))

    def recover(name: str, location: str, wait: bool) -> None:  # stands in for Qdrant's recovery
        calls.append(("recover", name, location))
        copy_collection(engine.store, "docs.v2", engine.store, name)

    monkeypatch.setattr(client, "recover_snapshot", recover)
    assert snapshot_server(engine, "docs") == "docs.v2-1.snapshot"  # the live version, not the alias
    assert restore_server(engine, "file:///snapshots/docs.v2-1.snapshot", "copy") == "copy"
    assert calls == [("create", "docs.v2"), ("recover", "copy.v1", "file:///snapshots/docs.v2-1.snapshot")]
    assert engine.kb("copy").embedder.dim == 24  # served by its own model
    assert top(engine, "copy", "cats word1") == top(engine, "docs", "cats word1")
    with pytest.raises(AlreadyExists):
        restore_server(engine, "file:///x", "docs")
    engine.close()
