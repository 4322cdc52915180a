"""`zhiku check`: each kind of damage is found, repaired where a good copy exists, and reported."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from typer.testing import CliRunner

from zhiku.cli import app
from zhiku.engine.check import Kind, check_collection
from zhiku.engine.engine import Engine
from zhiku.engine.identity import point_id
from zhiku.engine.settings import Settings, load_settings
from zhiku.engine.types import Point, SparseVector

TEXTS = {
    "a": "alpha beta gamma delta. " * 40,
    "b": "river stone cloud omega",
    "c": "北京是中华人民共和国的首都。",
}


def _settings(tmp_path: Path, backend: str) -> Settings:
    store: dict[str, Any] = {"backend": "edge"} if backend == "edge" else {"backend": "server", "url": ":memory:"}
    return load_settings(data_dir=tmp_path, embed={"backend": "fake"}, store=store, chunk={"size": 64, "overlap": 8})


@pytest.fixture(params=["edge", "server"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    engine = Engine(_settings(tmp_path, request.param))
    engine.kb("c", create=True).add_texts(list(TEXTS.values()), ids=list(TEXTS))
    yield engine
    engine.close()


def _points(engine: Engine) -> list[Point]:
    return list(engine.store.scroll_points("c"))


def _check(engine: Engine, repair: bool = False):  # type: ignore[no-untyped-def]
    return check_collection(engine.store, "c", engine.settings, repair=repair)


def _kinds(report) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(p.kind.value for p in report.problems)


def test_a_clean_collection_passes(engine: Engine) -> None:
    report = _check(engine)
    assert report.ok and report.problems == []
    assert report.documents == 3 and report.points == len(_points(engine)) > 3
    assert "consistent" in report.render()


def test_an_orphan_point_is_found_and_removed(engine: Engine) -> None:
    some = _points(engine)[0]
    engine.store.upsert("c", [Point(point_id("stray"), some.dense, some.sparse, {"text": "stray"})])
    report = _check(engine, repair=True)
    assert _kinds(report) == ["orphan"] and report.ok
    assert _check(engine).problems == []


def test_a_duplicate_chunk_is_removed_keeping_the_canonical_point(engine: Engine) -> None:
    some = _points(engine)[0]
    engine.store.upsert("c", [replace(some, id=point_id("copy"))])
    report = _check(engine, repair=True)
    assert _kinds(report) == ["duplicate"] and report.ok
    assert some.id in {p.id for p in _points(engine)}
    assert _check(engine).ok


def test_wrong_and_missing_bm25_vectors_are_reencoded(engine: Engine) -> None:
    first, second = _points(engine)[:2]
    engine.store.upsert("c", [
        replace(first, sparse=SparseVector(first.sparse.indices, tuple(v * 2 for v in first.sparse.values))),
        replace(second, sparse=SparseVector((), ())),
    ])
    report = _check(engine)
    assert _kinds(report) == ["sparse", "sparse"] and not report.ok
    assert "differs from a recount" in report.render() and "is empty" in report.render()
    assert _check(engine, repair=True).ok
    restored = {p.id: p.sparse for p in _points(engine)}
    assert restored[first.id].indices == first.sparse.indices
    assert np.allclose(restored[first.id].values, first.sparse.values, rtol=1e-5)
    assert _check(engine).problems == []


def test_two_complete_versions_are_reported_and_a_rerun_converges(engine: Engine) -> None:
    old = [p for p in _points(engine) if p.payload["doc_id"] == "b"]
    engine.kb("c").add_texts(["river stone cloud omega, changed"], ids=["b"])
    engine.store.upsert("c", old)  # the old version comes back, as a crash between write and retire leaves it
    # Which version is newer is not stored, so the check keeps both and says so.
    report = _check(engine, repair=True)
    assert _kinds(report) == ["stale"] and not report.ok and "re-ingest" in report.render()
    engine.kb("c").add_texts(["river stone cloud omega, changed"], ids=["b"])
    assert _check(engine).problems == []
    assert engine.kb("c").get_document("b").text.endswith("changed")


def test_an_incomplete_version_beside_a_complete_one_is_removed(engine: Engine) -> None:
    new = [p for p in _points(engine) if p.payload["doc_id"] == "a"]
    engine.kb("c").add_texts(["alpha beta, rewritten. " * 40], ids=["a"])
    engine.store.upsert("c", new[:1])  # one chunk of the other version left over
    report = _check(engine, repair=True)
    assert _kinds(report) == ["incomplete"] and report.ok
    assert _check(engine).ok


def test_a_document_with_no_complete_version_is_reported_not_repaired(engine: Engine) -> None:
    chunks = [p for p in _points(engine) if p.payload["doc_id"] == "a"]
    engine.store.delete_points("c", [chunks[-1].id])
    report = _check(engine, repair=True)
    assert _kinds(report) == ["incomplete"] and not report.ok
    assert "re-ingest the document" in report.render() and "NOT repairable" in report.render()


def test_a_zero_dense_vector_is_reported(engine: Engine) -> None:
    some = _points(engine)[0]
    engine.store.upsert("c", [replace(some, dense=np.zeros_like(some.dense))])
    report = _check(engine, repair=True)
    assert _kinds(report) == ["dense"] and not report.ok


def test_a_running_mean_manifest_gets_its_avgdl_fixed(engine: Engine) -> None:
    raw = engine.store.read_manifest("c")
    assert raw is not None
    # The format-1 manifest this collection would have had: the running mean that gives today's avgdl.
    avgdl = raw["bm25"].pop("avgdl")
    raw["bm25"].update(docs=4, total_len=int(avgdl * 4))
    engine.store.write_manifest("c", raw)
    report = _check(engine, repair=True)
    assert "manifest" in _kinds(report) and report.ok
    assert engine.store.read_manifest("c")["bm25"]["avgdl"] == pytest.approx(int(avgdl * 4) / 4)


def test_cli_exits_one_with_a_report_and_zero_after_repair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_EMBED__BACKEND", "fake")
    monkeypatch.setenv("ZHIKU_CONFIG", str(tmp_path / "none.toml"))
    data = tmp_path / "data"
    engine = Engine(load_settings(data_dir=data, embed={"backend": "fake"}))
    try:
        engine.kb("c", create=True).add_texts(list(TEXTS.values()), ids=list(TEXTS))
        some = _points(engine)[0]
        engine.store.upsert("c", [Point(point_id("stray"), some.dense, some.sparse, {"text": "stray"})])
    finally:
        engine.close()
    runner = CliRunner()
    found = runner.invoke(app, ["check", "-c", "c", "--data-dir", str(data)])
    assert found.exit_code == 1 and "[orphan]" in found.stdout and "--repair" in found.stdout
    fixed = runner.invoke(app, ["check", "-c", "c", "--data-dir", str(data), "--repair", "--json"])
    assert fixed.exit_code == 0, fixed.output
    assert '"repaired": true' in fixed.stdout
    clean = runner.invoke(app, ["check", "-c", "c", "--data-dir", str(data)])
    assert clean.exit_code == 0 and "consistent" in clean.stdout
    missing = runner.invoke(app, ["check", "-c", "nope", "--data-dir", str(data)])
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_a_version_a_killed_reindex_left_is_reported_and_dropped(engine: Engine) -> None:
    # What a re-index killed during its build leaves: a newer version no alias points at.
    engine.kb("c.v2", create=True).add_texts(["half built"], ids=["a"])
    before = sorted(p.id for p in _points(engine))
    report = _check(engine)
    assert _kinds(report) == ["unfinished"] and "c.v2" in report.render()
    assert _check(engine, repair=True).ok
    assert not engine.store.has_collection("c.v2")
    assert sorted(p.id for p in _points(engine)) == before and _check(engine).ok
