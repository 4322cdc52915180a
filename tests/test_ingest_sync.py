"""Incremental sync: unchanged costs nothing, changes replace, prune, crash, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zhiku.engine.kb import KnowledgeBase
from zhiku.engine.writes import WriteSession
from zhiku.ingest.pipeline import IngestOptions, ingest_paths

INLINE = IngestOptions(workers=0, optimize=False)


def _corpus(root: Path) -> Path:
    docs = root / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "guide.md").write_text(
        "# Guide\n\nZhiku ingests files.\n\n## Tables\n\n| name | qty |\n|---|---|\n| apple | 3 |\n",
        encoding="utf-8",
    )
    (docs / "sub" / "notes.txt").write_text("Plain notes about zebras.\n\nSecond paragraph.\n", encoding="utf-8")
    (docs / "prices.csv").write_text("item,price\ntea,3\ncoffee,4\n", encoding="utf-8")
    records = [{"_id": f"r{i}", "title": f"Record {i}", "text": f"record number {i} text"} for i in range(5)]
    (docs / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return docs


def _kb(path: Path) -> KnowledgeBase:
    return KnowledgeBase(path, collection="t", embed__backend="fake")


def _ids(kb: KnowledgeBase) -> list[str]:
    return sorted(p["chunk_id"] for _, p in kb.store.scroll(kb.collection, (), 256))


def test_first_run_then_unchanged_run_embeds_nothing(tmp_path: Path) -> None:
    docs = _corpus(tmp_path)
    with _kb(tmp_path / "data") as kb:
        first = ingest_paths(kb, [docs], INLINE)
        assert (first.new, first.failed) == (4, 0)
        assert first.chunks_embedded == kb.count() > 0
        doc_ids = {d["doc_id"] for d in kb.list_documents(limit=100)}
        assert doc_ids == {"guide.md", "sub/notes.txt", "prices.csv", "r0", "r1", "r2", "r3", "r4"}
        calls = kb.embedder.calls
        second = ingest_paths(kb, [docs], INLINE)
        assert (second.unchanged, second.chunks_embedded, kb.embedder.calls) == (4, 0, calls)


def test_metadata_sections_tables_and_sidecars(tmp_path: Path) -> None:
    docs = _corpus(tmp_path)
    (docs / "guide.md.meta.json").write_text('{"team": "search"}', encoding="utf-8")
    with _kb(tmp_path / "data") as kb:
        ingest_paths(kb, [docs], IngestOptions(workers=0, optimize=False, meta={"batch": 7}))
        doc = kb.get_document("guide.md")
        meta = doc.chunks[0].metadata
        assert meta["team"] == "search" and meta["batch"] == 7
        assert meta["type"] == "markdown" and meta["language"] == "en"
        assert meta["path"] == str(docs / "guide.md") and meta["size"] > 0 and "mtime" in meta
        table = [c for c in doc.chunks if c.metadata.get("chunk_kind") == "table"]
        assert table and "| apple | 3 |" in table[0].text and table[0].section == "Guide > Tables"
        assert table[0].metadata["parent_section"] == "Guide"
        assert kb.search("apple", filters={"team": "search"}, mode="bm25")


def test_changed_file_is_replaced_and_prune_removes_gone_files(tmp_path: Path) -> None:
    docs = _corpus(tmp_path)
    with _kb(tmp_path / "data") as kb:
        ingest_paths(kb, [docs], INLINE)
        old = {i for i in _ids(kb) if i.startswith("sub/notes.txt#")}
        (docs / "sub" / "notes.txt").write_text("Rewritten notes about lions.\n", encoding="utf-8")
        (docs / "prices.csv").unlink()
        lines = (docs / "corpus.jsonl").read_text().splitlines()
        (docs / "corpus.jsonl").write_text("\n".join(lines[:3]) + "\n")  # r3, r4 gone

        plan = ingest_paths(kb, [docs], IngestOptions(workers=0, prune=True, dry_run=True))
        assert ("delete", "prices.csv") in plan.plan and ("update", str(docs / "sub" / "notes.txt")) in plan.plan
        assert kb.get_document("prices.csv")  # a dry run changes nothing

        summary = ingest_paths(kb, [docs], IngestOptions(workers=0, prune=True, optimize=False))
        assert summary.docs_pruned == 1 and summary.docs_removed == 2
        new = {i for i in _ids(kb) if i.startswith("sub/notes.txt#")}
        assert new and not (new & old)
        assert "lions" in kb.get_document("sub/notes.txt").text
        remaining = {d["doc_id"] for d in kb.list_documents(limit=100)}
        assert remaining == {"guide.md", "sub/notes.txt", "r0", "r1", "r2"}
        # Unchanged records of the changed container were not embedded again.
        assert summary.chunks_embedded == len(new)


def test_a_run_that_dies_mid_write_converges_on_rerun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _corpus(tmp_path)
    with _kb(tmp_path / "clean") as kb:
        ingest_paths(kb, [docs], IngestOptions(workers=0, optimize=False, batch_size=2))
        clean = _ids(kb)
    with _kb(tmp_path / "data") as kb:
        real = WriteSession.write_chunks
        calls = {"n": 0}

        def dying(session, chunks, dense=None):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("simulated crash")
            return real(session, chunks, dense)

        monkeypatch.setattr(WriteSession, "write_chunks", dying)
        with pytest.raises(RuntimeError, match="simulated crash"):
            ingest_paths(kb, [docs], IngestOptions(workers=0, optimize=False, batch_size=2))
        monkeypatch.setattr(WriteSession, "write_chunks", real)
        partial = len(_ids(kb))
        assert 0 < partial < len(clean)
        summary = ingest_paths(kb, [docs], IngestOptions(workers=0, optimize=False, batch_size=2))
        assert _ids(kb) == clean
        assert summary.chunks_embedded == len(clean) - partial  # present chunks are reused


def test_stale_version_is_removed_only_after_new_one_is_complete(tmp_path: Path) -> None:
    docs = _corpus(tmp_path)
    with _kb(tmp_path / "data") as kb:
        ingest_paths(kb, [docs], INLINE)
        events: list[str] = []
        real_upsert, real_delete = kb.store.upsert, kb.store.delete_where
        kb.store.upsert = lambda name, pts: (events.append("upsert"), real_upsert(name, pts))[1]  # type: ignore[method-assign]
        kb.store.delete_where = lambda name, cond: (events.append("delete"), real_delete(name, cond))[1]  # type: ignore[method-assign]
        (docs / "guide.md").write_text("# Guide\n\nNew words entirely.\n", encoding="utf-8")
        ingest_paths(kb, [docs], INLINE)
        assert events == ["upsert", "delete"]


def test_duplicate_ids_are_reported_not_doubled(tmp_path: Path) -> None:
    docs = tmp_path / "dup"
    docs.mkdir()
    for name in ("a.jsonl", "b.jsonl"):
        (docs / name).write_text('{"_id": "same", "text": "one text"}\n', encoding="utf-8")
    with _kb(tmp_path / "data") as kb:
        summary = ingest_paths(kb, [docs], INLINE)
        assert [p.code for p in summary.problems] == ["duplicate_id"]
        assert kb.count() == 1
