"""Writes: order-independent BM25 encoding (fixed avgdl), one manifest per collection, one writer lock.

Two `Engine`s over one store object stand for two writers of one data dir
(the server's request threads, a library user, an ingest job). Whatever
order their writes land in, every chunk must be encoded as a serial build
encodes it, and the manifest, written once at creation, must not change.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

import pytest

from zhiku.engine.embedders import build_embedder
from zhiku.engine.engine import Engine
from zhiku.engine.settings import Settings, load_settings
from zhiku.engine.stores import build_store
from zhiku.engine.stores.base import VectorStore

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda sigma omega river stone cloud".split()
QUERIES = ["alpha river", "gamma stone cloud", "omega", "beta kappa lambda", "theta sigma iota"]


def _docs(prefix: str, n: int, seed: int) -> dict[str, str]:
    # Documents of very different lengths, so a running mean would move a lot.
    out = {}
    for i in range(n):
        length = 3 + ((i * 7 + seed) % 11) * (1 + i % 4)
        out[f"{prefix}{i}"] = " ".join(WORDS[(i * 3 + j * (seed + 1)) % len(WORDS)] for j in range(length))
    return out


def _settings(tmp_path: Path, backend: str) -> Settings:
    store: dict[str, Any] = {"backend": "edge"} if backend == "edge" else {"backend": "server", "url": ":memory:"}
    return load_settings(data_dir=tmp_path, embed={"backend": "fake"}, store=store)


def _engine(settings: Settings, store: VectorStore) -> Engine:
    return Engine(settings, store=store, embedder=build_embedder(settings.embed))


def _add_in_batches(engine: Engine, docs: dict[str, str], size: int = 4) -> None:
    kb = engine.kb("c", create=True)
    ids = list(docs)
    for i in range(0, len(ids), size):
        part = ids[i : i + size]
        kb.add_texts([docs[d] for d in part], ids=part)


def _bm25(engine: Engine) -> list[list[tuple[float, str]]]:
    kb = engine.kb("c")
    # Ties may come back in insertion order, which differs between builds: compare as sorted.
    return [sorted((-round(h.score, 5), h.doc_id) for h in kb.search(q, top_k=50, mode="bm25")) for q in QUERIES]


def _at_once(*jobs: Callable[[], None]) -> None:
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        barrier.wait()
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.mark.parametrize("backend", ["server", "edge"])
def test_concurrent_writers_encode_as_a_serial_build_does(tmp_path: Path, backend: str) -> None:
    first, second = _docs("a", 12, 1), _docs("b", 12, 2)
    serial_settings = _settings(tmp_path / "serial", backend)
    serial_store = build_store(serial_settings)
    serial = _engine(serial_settings, serial_store)
    _add_in_batches(serial, {**first, **second})
    expected = _bm25(serial)

    settings = _settings(tmp_path / "concurrent", backend)
    store = build_store(settings)
    one, two = _engine(settings, store), _engine(settings, store)
    one.kb("c", create=True)
    created = store.read_manifest("c")
    _at_once(lambda: _add_in_batches(one, first), lambda: _add_in_batches(two, second))
    assert _bm25(one) == _bm25(two) == expected
    assert store.read_manifest("c") == created
    assert {k: v for k, v in created.items() if k != "created_at"} == {
        k: v for k, v in serial_store.read_manifest("c").items() if k != "created_at"
    }
    serial.close()
    one.close()


@pytest.mark.parametrize("backend", ["server", "edge"])
def test_replace_and_delete_change_no_other_documents_encoding(tmp_path: Path, backend: str) -> None:
    docs = _docs("d", 10, 3)
    settings = _settings(tmp_path / "a", backend)
    engine = _engine(settings, build_store(settings))
    _add_in_batches(engine, docs)
    kb = engine.kb("c")
    created = engine.store.read_manifest("c")
    kb.add_texts(["omega omega omega " + docs["d0"] * 3], ids=["d0"])  # replaced by a much longer text
    kb.delete(["d1", "d2"])
    assert engine.store.read_manifest("c") == created

    final = {"d0": "omega omega omega " + docs["d0"] * 3, **{k: v for k, v in docs.items() if k not in ("d0", "d1", "d2")}}
    fresh_settings = _settings(tmp_path / "b", backend)
    fresh = _engine(fresh_settings, build_store(fresh_settings))
    _add_in_batches(fresh, dict(sorted(final.items())))
    assert _bm25(engine) == _bm25(fresh)
    engine.close()
    fresh.close()


def test_writers_creating_one_collection_at_once_share_one_manifest(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "server")
    store = build_store(settings)
    engines = [_engine(settings, store) for _ in range(4)]
    _at_once(*[lambda e=e: e.kb("c", create=True) for e in engines])  # type: ignore[misc]
    stored = store.read_manifest("c")
    assert all(e.kb("c").manifest.to_dict() == stored for e in engines)


def test_concurrent_replaces_of_one_document_leave_one_complete_version(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "server")
    store = build_store(settings)
    one, two = _engine(settings, store), _engine(settings, store)
    one.kb("c", create=True).add_texts(["start"], ids=["x"])
    long_a, long_b = " ".join(["alpha"] * 900), " ".join(["beta"] * 700)
    for _ in range(3):
        _at_once(lambda: one.kb("c").add_texts([long_a], ids=["x"]), lambda: two.kb("c").add_texts([long_b], ids=["x"]))
        with one.kb("c").writing() as session:
            state = session.document_states(["x"])["x"]
        (version,) = state.chunk_ids  # one version, complete
        assert state.complete(version)


def test_a_format_1_manifest_keeps_its_running_mean_as_the_fixed_avgdl(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "server")
    engine = _engine(settings, build_store(settings))
    manifest = engine.kb("c", create=True).manifest.to_dict()
    legacy = {**manifest, "format": 1, "bm25": {"k1": 1.2, "b": 0.75, "docs": 10, "total_len": 437}}
    engine.store.write_manifest("c", legacy)
    again = _engine(settings, engine.store)
    assert again.kb("c").manifest.bm25.avgdl == pytest.approx(43.7)


def test_the_writer_lock_refuses_to_deadlock(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "server")
    kb = _engine(settings, build_store(settings)).kb("c", create=True)
    with kb.writing() as session:
        session.write_chunks(kb.chunk_document("x", "some text", "0" * 64, {}))
        with pytest.raises(RuntimeError, match="writer lock"):
            kb.add_texts(["more"])
    assert kb.count() == 1
