"""Read a BEIR-format directory: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.

Queries may carry an `answers` list (SQuAD-style); an empty list marks an
unanswerable question for the answer eval.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from zhiku.engine.errors import InvalidRequest, NotFound


@dataclass
class BeirDataset:
    """A loaded retrieval dataset; `qrels[qid][doc_id] = relevance`."""

    name: str
    corpus: dict[str, dict[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    answers: dict[str, list[str]] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """A hash of the corpus, so a cached index is reused only for the same documents."""
        digest = hashlib.sha256()
        for doc_id in sorted(self.corpus):
            doc = self.corpus[doc_id]
            digest.update(f"{doc_id}\x00{doc.get('title', '')}\x00{doc.get('text', '')}\x01".encode())
        return digest.hexdigest()[:16]


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise NotFound(f"missing BEIR file: {path}")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InvalidRequest(f"{path}:{line_no}: not JSON ({exc.msg})") from exc
    return rows


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        for row_no, row in enumerate(reader, 1):
            if not row or (row_no == 1 and row[0] == "query-id"):
                continue
            if len(row) < 3:
                raise InvalidRequest(f"{path}:{row_no}: expected query-id, corpus-id, score")
            try:
                qrels.setdefault(row[0], {})[row[1]] = int(float(row[2]))
            except ValueError as exc:
                raise InvalidRequest(f"{path}:{row_no}: score is not a number") from exc
    return qrels


def load_beir(directory: Path, split: str = "test", limit: int | None = None) -> BeirDataset:
    """Load a BEIR dir; `limit` keeps the first N judged queries (the corpus stays whole)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise NotFound(f"no such dataset directory: {directory}")
    qrels_path = directory / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise NotFound(f"missing qrels file: {qrels_path}")
    corpus = {
        str(row["_id"]): {"title": row.get("title") or "", "text": row.get("text") or ""}
        for row in _read_jsonl(directory / "corpus.jsonl")
    }
    query_rows = _read_jsonl(directory / "queries.jsonl")
    qrels = _read_qrels(qrels_path)
    queries: dict[str, str] = {}
    answers: dict[str, list[str]] = {}
    for row in query_rows:
        qid = str(row["_id"])
        if qid not in qrels and "answers" not in row:
            continue  # not part of this split
        if limit is not None and len(queries) >= limit:
            break
        queries[qid] = row.get("text") or ""
        if "answers" in row:
            answers[qid] = [str(a) for a in row.get("answers") or []]
    if not queries:
        raise InvalidRequest(f"{directory}: no queries with judgements in split {split!r}")
    qrels = {qid: rels for qid, rels in qrels.items() if qid in queries}
    return BeirDataset(directory.name, corpus, queries, qrels, answers)
