"""One conformance suite every VectorStore backend inherits, plus backend extras.

Troubleshooting: every test here runs the real engine (qdrant-edge in a tmp dir,
qdrant-client in `:memory:` local mode); none needs a server or the network.
A failure in only one subclass is that backend's bug; in both, suspect the
shared conversion in engine/stores/_convert.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from zhiku.engine.errors import AlreadyExists, ConfigError, InvalidRequest, NotFound, StoreLocked
from zhiku.engine.filters import Match, MatchAny, Range, parse_filters
from zhiku.engine.settings import Settings, StoreSettings
from zhiku.engine.stores import STORES, build_store
from zhiku.engine.stores.base import CollectionSpec, VectorStore
from zhiku.engine.stores.edge import EdgeStore
from zhiku.engine.stores.server import ServerStore
from zhiku.engine.types import SparseVector

from store_helpers import DIM, bm25_idf, pid, point, unit

C = "kb"


def _fill(store: VectorStore) -> None:
    """Six points: doc-0..5, meta lang/year/tag/score/draft, each on its own axis."""
    store.create_collection(CollectionSpec(C, DIM))
    langs = ["en", "zh", "en", "zh", "en", "fr"]
    store.upsert(
        C,
        [
            point(i, lang=langs[i], year=2000 + i, tag=f"t{i % 3}", score=i + 0.5, draft=i == 2)
            for i in range(6)
        ],
    )


class StoreConformance:
    """Behaviour every vector store must have. Subclasses provide `make_store`."""

    @classmethod
    def make_store(cls, tmp_path: Path, **settings: object) -> VectorStore:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[VectorStore]:
        s = self.make_store(tmp_path)
        yield s
        s.close()

    @pytest.fixture
    def filled(self, store: VectorStore) -> VectorStore:
        """A store holding collection C with the six points of `_fill`."""
        _fill(store)
        return store

    @pytest.fixture(scope="class")
    @classmethod
    def readonly(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VectorStore]:
        """Like `filled`, built once per class; for tests that only read."""
        s = cls.make_store(tmp_path_factory.mktemp("readonly"))
        _fill(s)
        yield s
        s.close()

    # -- collections ----------------------------------------------------------

    def test_satisfies_protocol(self, store: VectorStore) -> None:
        assert isinstance(store, VectorStore)

    def test_create_list_has_drop(self, store: VectorStore) -> None:
        assert store.list_collections() == []
        assert not store.has_collection("a")
        store.create_collection(CollectionSpec("a", DIM))
        store.create_collection(CollectionSpec("b-2.x_y", DIM))
        assert store.list_collections() == ["a", "b-2.x_y"]
        assert store.has_collection("a")
        store.drop_collection("a")
        assert store.list_collections() == ["b-2.x_y"]
        assert not store.has_collection("a")
        with pytest.raises(NotFound):
            store.drop_collection("a")

    def test_create_existing_is_refused(self, store: VectorStore) -> None:
        store.create_collection(CollectionSpec("a", DIM))
        with pytest.raises(AlreadyExists):
            store.create_collection(CollectionSpec("a", DIM))

    def test_dropped_name_can_be_reused(self, filled: VectorStore) -> None:
        filled.drop_collection(C)
        filled.create_collection(CollectionSpec(C, DIM))
        assert filled.count(C) == 0

    @pytest.mark.parametrize("name", ["", "a/b", "../x", "..", "has space", "x" * 65, "é"])
    def test_bad_collection_names(self, store: VectorStore, name: str) -> None:
        with pytest.raises(InvalidRequest):
            store.create_collection(CollectionSpec(name, DIM))
        with pytest.raises(InvalidRequest):
            store.has_collection(name)

    def test_bad_dimension(self, store: VectorStore) -> None:
        with pytest.raises(InvalidRequest):
            store.create_collection(CollectionSpec("a", 0))

    # -- manifest -------------------------------------------------------------

    def test_manifest_round_trip(self, store: VectorStore) -> None:
        store.create_collection(CollectionSpec(C, DIM))
        assert store.read_manifest(C) is None
        first = {"embed": {"model": "m", "dim": DIM}, "version": 1, "tokenizer": "bilingual"}
        store.write_manifest(C, first)
        assert store.read_manifest(C) == first
        second = {"embed": {"model": "m2", "dim": DIM}, "version": 2}
        store.write_manifest(C, second)
        assert store.read_manifest(C) == second  # replaced, not merged

    def test_manifest_must_be_json(self, store: VectorStore) -> None:
        store.create_collection(CollectionSpec(C, DIM))
        store.write_manifest(C, {"ok": True})
        for bad in ({"when": object()}, {"x": float("nan")}, ["not", "an", "object"]):
            with pytest.raises(InvalidRequest):
                store.write_manifest(C, bad)  # type: ignore[arg-type]
        assert store.read_manifest(C) == {"ok": True}

    # -- dense and sparse queries ---------------------------------------------

    def test_dense_ranks_nearest_first(self, store: VectorStore) -> None:
        store.create_collection(CollectionSpec(C, DIM))
        tilts = [0.9, 0.1, 0.5, 0.3]  # smaller tilt = closer to axis 0
        store.upsert(C, [point(i, dense=unit(0, t)) for i, t in enumerate(tilts)])
        hits = store.query_dense(C, unit(0), limit=3)
        assert [h.id for h in hits] == [pid(1), pid(3), pid(2)]
        assert hits[0].score == pytest.approx(np.cos(0.1), rel=1e-5)
        assert all(type(h.score) is float and type(h.payload) is dict for h in hits)
        assert hits[0].payload["doc_id"] == "doc-1"

    def test_search_time_hnsw_ef_reaches_the_engine(self, tmp_path: Path) -> None:
        # store.hnsw_ef goes into each engine's own SearchParams on every dense
        # query (alone and in the one-round-trip hybrid); the engine accepts it
        # and ranks as before. bench/scale.py measures its effect on recall.
        store = self.make_store(tmp_path, hnsw_ef=8)
        try:
            store.create_collection(CollectionSpec(C, DIM))
            store.upsert(C, [point(i, dense=unit(0, t)) for i, t in enumerate([0.9, 0.1, 0.5])])
            store.optimize(C)
            assert [h.id for h in store.query_dense(C, unit(0), limit=2)] == [pid(1), pid(2)]
            if hasattr(store, "query_legs"):
                dense, _ = store.query_legs(C, unit(0), None, 2)
                assert [h.id for h in dense] == [pid(1), pid(2)]
        finally:
            store.close()

    def test_dense_is_cosine(self, store: VectorStore) -> None:
        store.create_collection(CollectionSpec(C, DIM))
        store.upsert(C, [point(0, dense=unit(0) * 7.0)])
        (hit,) = store.query_dense(C, unit(0) * 0.01, limit=5)
        assert hit.score == pytest.approx(1.0, rel=1e-5)

    def test_sparse_idf_exact_scores(self, store: VectorStore) -> None:
        store.create_collection(CollectionSpec(C, DIM))
        # term 7 is in one document, term 8 in three, of five.
        docs = [{7: 2.0, 8: 1.0}, {8: 1.5}, {8: 1.0, 9: 1.0}, {9: 1.0}, {9: 1.0}]
        store.upsert(C, [point(i, terms=t) for i, t in enumerate(docs)])
        rare = store.query_sparse(C, SparseVector((7,), (1.0,)), limit=10)
        assert [h.id for h in rare] == [pid(0)]
        assert rare[0].score == pytest.approx(bm25_idf(5, 1) * 2.0, rel=1e-5)
        common = store.query_sparse(C, SparseVector((8,), (1.0,)), limit=10)
        assert {h.id: h.score for h in common} == pytest.approx(
            {pid(0): bm25_idf(5, 3) * 1.0, pid(1): bm25_idf(5, 3) * 1.5, pid(2): bm25_idf(5, 3)},
            rel=1e-5,
        )
        # The same stored weight scores higher for the rarer term.
        assert bm25_idf(5, 1) > bm25_idf(5, 3)
        both = store.query_sparse(C, SparseVector((7, 8), (1.0, 1.0)), limit=10)
        assert both[0].id == pid(0)
        assert both[0].score == pytest.approx(bm25_idf(5, 1) * 2.0 + bm25_idf(5, 3), rel=1e-5)

    def test_sparse_idf_counts_only_live_points(self, store: VectorStore) -> None:
        store.create_collection(CollectionSpec(C, DIM))
        store.upsert(C, [point(i, terms={7: 1.0} if i < 3 else {8: 1.0}) for i in range(6)])
        query = SparseVector((7,), (1.0,))
        assert store.query_sparse(C, query, 5)[0].score == pytest.approx(bm25_idf(6, 3), rel=1e-5)
        store.delete_points(C, [pid(0)])
        # Deleted points leave the statistics at once, not at some later vacuum.
        assert store.query_sparse(C, query, 5)[0].score == pytest.approx(bm25_idf(5, 2), rel=1e-5)
        store.upsert(C, [point(1, terms={8: 1.0})])  # replaced: no longer has term 7
        assert store.query_sparse(C, query, 5)[0].score == pytest.approx(bm25_idf(5, 1), rel=1e-5)

    def test_sparse_without_matching_terms_is_empty(self, readonly: VectorStore) -> None:
        assert readonly.query_sparse(C, SparseVector((424242,), (1.0,)), limit=5) == []
        assert readonly.query_sparse(C, SparseVector((), ()), limit=5) == []

    # -- filters --------------------------------------------------------------

    @pytest.mark.parametrize(
        ("conditions", "expected"),
        [
            ((Match("meta.lang", "en"),), {0, 2, 4}),
            ((Match("doc_id", "doc-3"),), {3}),
            ((Match("meta.year", 2001),), {1}),
            ((Match("meta.year", 2001.0),), {1}),  # a number parsed as float still matches
            ((Match("meta.score", 2.5),), {2}),  # fractional: matched as [v, v]
            ((Match("meta.draft", True),), {2}),
            ((MatchAny("meta.lang", ("zh", "fr")),), {1, 3, 5}),
            ((MatchAny("meta.year", (2000, 2005)),), {0, 5}),
            ((MatchAny("meta.tag", ("t0", 2001)),), {0, 3}),  # mixed types
            ((Range("meta.year", gte=2002, lt=2004),), {2, 3}),
            ((Range("meta.score", gt=3.5),), {4, 5}),
            ((Match("meta.lang", "en"), Range("meta.year", gt=2000)), {2, 4}),
            ((Match("meta.lang", "de"),), set()),
        ],
    )
    def test_filters(self, readonly: VectorStore, conditions: tuple, expected: set[int]) -> None:
        ids = {pid(i) for i in expected}
        assert {h.id for h in readonly.query_dense(C, unit(0), 10, conditions)} == ids
        everything = SparseVector(tuple(1000 + i for i in range(6)), (1.0,) * 6)
        assert {h.id for h in readonly.query_sparse(C, everything, 10, conditions)} == ids
        assert readonly.count(C, conditions) == len(expected)
        assert {i for i, _ in readonly.scroll(C, conditions)} == ids

    def test_user_filter_dict(self, readonly: VectorStore) -> None:
        conditions = parse_filters({"lang": ["en", "fr"], "year": {"gte": 2002}})
        assert {h.id for h in readonly.query_dense(C, unit(0), 10, conditions)} == {
            pid(2), pid(4), pid(5)
        }

    # -- writes ---------------------------------------------------------------

    def test_delete_points(self, filled: VectorStore) -> None:
        filled.delete_points(C, [pid(0), pid(1), pid(99)])  # unknown ids are ignored
        filled.delete_points(C, [])
        assert filled.count(C) == 4
        assert pid(0) not in {h.id for h in filled.query_dense(C, unit(0), 10)}

    def test_delete_where_doc_id(self, store: VectorStore) -> None:
        store.create_collection(CollectionSpec(C, DIM))
        store.upsert(C, [point(i, doc_id="a" if i < 3 else "b") for i in range(5)])
        store.delete_where(C, [Match("doc_id", "a")])
        assert sorted(i for i, _ in store.scroll(C)) == sorted([pid(3), pid(4)])
        with pytest.raises(InvalidRequest):
            store.delete_where(C, [])  # would delete everything
        assert store.count(C) == 2

    def test_upsert_same_id_replaces(self, filled: VectorStore) -> None:
        filled.upsert(C, [point(0, dense=unit(6), terms={77: 1.0}, lang="xx")])
        assert filled.count(C) == 6
        (rec,) = filled.retrieve(C, [pid(0)])
        assert rec[1]["meta"] == {"lang": "xx"}  # payload replaced, not merged
        assert filled.query_dense(C, unit(6), 1)[0].id == pid(0)
        assert [h.id for h in filled.query_sparse(C, SparseVector((1000,), (1.0,)), 5)] == []

    def test_upsert_in_batches(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path, upsert_batch=3)
        try:
            store.create_collection(CollectionSpec(C, DIM))
            store.upsert(C, [point(i) for i in range(10)])
            assert store.count(C) == 10
        finally:
            store.close()

    @pytest.mark.parametrize(
        "bad",
        [
            lambda: point(0, dense=np.ones(DIM + 1, dtype=np.float32)),
            lambda: point(0, dense=np.full(DIM, np.nan, dtype=np.float32)),
            lambda: point(0, terms={1: float("inf")}),
            lambda: type(point(0))("not-a-uuid", unit(0), SparseVector((), ()), {}),
        ],
        ids=["wrong-dim", "nan", "inf-weight", "bad-id"],
    )
    def test_bad_points_are_refused(self, filled: VectorStore, bad) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(InvalidRequest):
            filled.upsert(C, [bad()])
        assert filled.count(C) == 6

    def test_bad_queries_are_refused(self, readonly: VectorStore) -> None:
        with pytest.raises(InvalidRequest):
            readonly.query_dense(C, np.ones(DIM - 1), 5)
        with pytest.raises(InvalidRequest):
            readonly.query_dense(C, unit(0), 0)
        with pytest.raises(InvalidRequest):
            readonly.query_sparse(C, SparseVector((1, 1), (1.0, 1.0)), 5)
        with pytest.raises(InvalidRequest):
            readonly.retrieve(C, ["nope"])

    # -- reads ----------------------------------------------------------------

    def test_count(self, readonly: VectorStore) -> None:
        assert readonly.count(C) == 6
        assert readonly.count(C, [Match("meta.lang", "zh")]) == 2

    def test_scroll_yields_all(self, store: VectorStore) -> None:
        store.create_collection(CollectionSpec(C, DIM))
        store.upsert(C, [point(i) for i in range(23)])
        seen = list(store.scroll(C, batch=5))
        assert sorted(i for i, _ in seen) == sorted(pid(i) for i in range(23))
        assert all(type(p) is dict and p["text"].startswith("text ") for _, p in seen)

    def test_retrieve_by_ids(self, readonly: VectorStore) -> None:
        got = readonly.retrieve(C, [pid(3), pid(99), pid(1)])
        assert [i for i, _ in got] == [pid(3), pid(1)]  # asked order; missing ids skipped
        assert got[0][1]["meta"]["year"] == 2003
        assert readonly.retrieve(C, []) == []

    def test_ids_come_back_canonical(self, readonly: VectorStore) -> None:
        shouted = pid(2).upper()
        assert [i for i, _ in readonly.retrieve(C, [shouted])] == [pid(2)]

    # -- missing collections --------------------------------------------------

    @pytest.mark.parametrize(
        "call",
        [
            lambda s: s.read_manifest("nope"),
            lambda s: s.write_manifest("nope", {}),
            lambda s: s.upsert("nope", [point(0)]),
            lambda s: s.delete_points("nope", [pid(0)]),
            lambda s: s.delete_where("nope", [Match("doc_id", "x")]),
            lambda s: s.query_dense("nope", unit(0), 3),
            lambda s: s.query_sparse("nope", SparseVector((1,), (1.0,)), 3),
            lambda s: s.count("nope"),
            lambda s: list(s.scroll("nope")),
            lambda s: s.retrieve("nope", [pid(0)]),
            lambda s: s.flush("nope"),
            lambda s: s.optimize("nope"),
            lambda s: s.drop_collection("nope"),
        ],
    )
    def test_missing_collection_is_not_found(self, store: VectorStore, call) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(NotFound):
            call(store)

    # -- lifecycle ------------------------------------------------------------

    def test_optimize_keeps_results(self, filled: VectorStore) -> None:
        before = filled.query_dense(C, unit(2, 0.2), 6)
        filled.flush(C)
        filled.optimize(C)
        after = filled.query_dense(C, unit(2, 0.2), 6)
        assert [(h.id, round(h.score, 5)) for h in after] == [(h.id, round(h.score, 5)) for h in before]

    # -- a dense vector stored in parts (engine/stores/_layout.py) ------------

    def _parts_pair(self, store: VectorStore) -> list[np.ndarray]:
        """`whole` and `parts` (DIM as 3 + 5) holding the same twelve random points."""
        rng = np.random.default_rng(3)
        vectors = [rng.standard_normal(DIM).astype(np.float32) for _ in range(12)]
        store.create_collection(CollectionSpec("whole", DIM))
        store.create_collection(CollectionSpec("parts", DIM, (3, 5)))
        for name in ("whole", "parts"):
            store.upsert(name, [point(i, dense=v, lang="en" if i % 2 else "zh") for i, v in enumerate(vectors)])
        return vectors

    @staticmethod
    def _ranked(hits: list) -> list[tuple[str, float]]:  # type: ignore[type-arg]
        return [(h.id, round(h.score, 5)) for h in hits]

    def test_parts_score_as_the_whole_vector(self, store: VectorStore) -> None:
        self._parts_pair(store)
        assert store.dense_parts("parts") == (3, 5) and store.dense_parts("whole") == ()
        rng = np.random.default_rng(4)
        for touched in (slice(0, 3), slice(3, DIM), slice(0, DIM)):  # one part, the other, both
            q = np.zeros(DIM, dtype=np.float32)
            q[touched] = rng.standard_normal(touched.stop - touched.start)
            for cond in ((), (Match("meta.lang", "zh"),)):
                want = store.query_dense("whole", q, 5, cond)
                got = store.query_dense("parts", q, 5, cond)
                assert self._ranked(got) == self._ranked(want)
                assert [h.payload for h in got] == [h.payload for h in want]
            assert store.query_dense("parts", q, 3, with_payload=False)[0].payload == {}
            if hasattr(store, "query_legs"):  # one request for both legs, or two for several parts
                sparse = SparseVector((1001, 1004), (1.0, 1.0))
                legs = store.query_legs("parts", q, sparse, 4)
                want_legs = store.query_legs("whole", q, sparse, 4)
                assert [self._ranked(leg) for leg in legs] == [self._ranked(leg) for leg in want_legs]

    def test_parts_read_back_whole(self, store: VectorStore) -> None:
        vectors = self._parts_pair(store)
        back = {p.id: p.dense for p in store.scroll_points("parts")}
        for i, v in enumerate(vectors):
            np.testing.assert_allclose(back[pid(i)], v / np.linalg.norm(v), atol=1e-6)

    def test_parts_must_add_up(self, store: VectorStore) -> None:
        with pytest.raises(InvalidRequest):
            store.create_collection(CollectionSpec("bad", DIM, (3, 4)))

    def test_copy_keeps_the_parts(self, store: VectorStore) -> None:
        from zhiku.engine.reindex import copy_collection

        self._parts_pair(store)
        assert copy_collection(store, "parts", store, "copied") == 12
        assert store.dense_parts("copied") == (3, 5)
        q = np.zeros(DIM, dtype=np.float32)
        q[:3] = (0.3, -1.0, 0.5)
        assert self._ranked(store.query_dense("copied", q, 6)) == self._ranked(store.query_dense("whole", q, 6))


class TestEdgeStore(StoreConformance):
    @classmethod
    def make_store(cls, tmp_path: Path, **settings: object) -> VectorStore:
        return EdgeStore(tmp_path / "data", StoreSettings(**settings))

    def test_layout_on_disk(self, filled: VectorStore, tmp_path: Path) -> None:
        filled.write_manifest(C, {"v": 1})
        base = tmp_path / "data" / "collections" / C
        assert (base / "shard").is_dir()
        assert (base / "manifest.json").is_file()
        assert sorted(p.name for p in base.iterdir()) == [".lock", "manifest.json", "shard"]

    def test_reopen_after_close_gives_identical_results(self, filled: VectorStore, tmp_path: Path) -> None:
        filled.write_manifest(C, {"model": "m"})
        q_dense = unit(1, 0.3)
        q_sparse = SparseVector((1001, 1003), (1.0, 0.5))
        cond = (Match("meta.lang", "zh"),)
        before = (
            filled.query_dense(C, q_dense, 5),
            filled.query_sparse(C, q_sparse, 5),
            filled.query_dense(C, q_dense, 5, cond),
            sorted(filled.scroll(C)),
        )
        filled.close()
        reopened = self.make_store(tmp_path)
        try:
            after = (
                reopened.query_dense(C, q_dense, 5),
                reopened.query_sparse(C, q_sparse, 5),
                reopened.query_dense(C, q_dense, 5, cond),
                sorted(reopened.scroll(C)),
            )
            assert after == before
            assert reopened.read_manifest(C) == {"model": "m"}
            assert reopened.list_collections() == [C]
        finally:
            reopened.close()

    def test_second_store_in_same_process_is_locked_out(self, filled: VectorStore, tmp_path: Path) -> None:
        other = self.make_store(tmp_path)
        try:
            with pytest.raises(StoreLocked, match=r"in use by another process \(pid \d+\)"):
                other.count(C)
            assert other.list_collections() == [C]  # listing needs no lock
        finally:
            other.close()
        filled.close()  # releases the lock, so a new store may open it
        again = self.make_store(tmp_path)
        try:
            assert again.count(C) == 6
        finally:
            again.close()

    def test_other_process_gets_store_locked(self, filled: VectorStore, tmp_path: Path) -> None:
        import os

        script = textwrap.dedent(
            f"""
            import sys
            from pathlib import Path
            from zhiku.engine.errors import StoreLocked
            from zhiku.engine.settings import StoreSettings
            from zhiku.engine.stores.edge import EdgeStore
            store = EdgeStore(Path({str(tmp_path / "data")!r}), StoreSettings())
            try:
                print("count", store.count({C!r}))
            except StoreLocked as exc:
                print("locked", exc)
            finally:
                store.close()
            """
        )
        run = lambda: subprocess.run(  # noqa: E731
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        held = run()
        assert held.returncode == 0, held.stderr
        assert held.stdout.startswith("locked"), held.stdout
        assert f"collection '{C}'" in held.stdout
        assert f"(pid {os.getpid()})" in held.stdout
        filled.close()
        free = run()
        assert free.returncode == 0, free.stderr
        assert free.stdout.strip() == "count 6"

    def test_damaged_manifest_is_a_config_error(self, filled: VectorStore, tmp_path: Path) -> None:
        (tmp_path / "data" / "collections" / C / "manifest.json").write_text("{half", encoding="utf-8")
        with pytest.raises(ConfigError, match="manifest.json"):
            filled.read_manifest(C)

    def test_manifest_write_leaves_no_temp_files(self, filled: VectorStore, tmp_path: Path) -> None:
        for i in range(3):
            filled.write_manifest(C, {"i": i})
        base = tmp_path / "data" / "collections" / C
        assert not [p for p in base.iterdir() if p.name.endswith(".tmp")]


class TestServerStore(StoreConformance):
    @classmethod
    def make_store(cls, tmp_path: Path, **settings: object) -> VectorStore:
        return ServerStore(StoreSettings(backend="server", url=":memory:", **settings))

    def test_local_path_mode_reopens(self, tmp_path: Path) -> None:
        settings = StoreSettings(backend="server", url=str(tmp_path / "q"))
        first = ServerStore(settings)
        first.create_collection(CollectionSpec(C, DIM))
        first.upsert(C, [point(i) for i in range(4)])
        first.write_manifest(C, {"model": "m"})
        before = first.query_dense(C, unit(2, 0.1), 3)
        first.close()
        second = ServerStore(settings)
        try:
            assert second.query_dense(C, unit(2, 0.1), 3) == before
            assert second.read_manifest(C) == {"model": "m"}
        finally:
            second.close()

    @pytest.mark.parametrize(("status", "error"), [(404, NotFound), (400, InvalidRequest)])
    def test_server_errors_become_domain_errors(self, status: int, error: type) -> None:
        from qdrant_client.http.exceptions import UnexpectedResponse

        from zhiku.engine.stores.server import _translated

        with pytest.raises(error):
            with _translated(C):
                raise UnexpectedResponse(status, "x", b"{}", {})  # type: ignore[arg-type]

    def test_needs_a_url(self) -> None:
        with pytest.raises(ConfigError):
            ServerStore(StoreSettings(backend="server"))


# -- registry -----------------------------------------------------------------


def test_registry_names() -> None:
    assert set(STORES) == {"edge", "server"}


def test_build_store_edge(tmp_path: Path) -> None:
    store = build_store(Settings(data_dir=tmp_path))
    try:
        assert isinstance(store, EdgeStore) and store.root == tmp_path
    finally:
        store.close()


def test_build_store_server() -> None:
    store = build_store(Settings(store=StoreSettings(backend="server", url=":memory:")))
    try:
        assert isinstance(store, ServerStore)
    finally:
        store.close()


def test_build_store_unknown_backend(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    settings = settings.model_copy(update={"store": settings.store.model_copy(update={"backend": "nope"})})
    with pytest.raises(ConfigError, match="nope"):
        build_store(settings)
