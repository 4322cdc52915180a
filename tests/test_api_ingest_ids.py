"""Uploads report the document ids the ingest run stored, nothing worked out after the fact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api_support import api_client, fake_settings


@pytest.mark.slow  # the first parse may import unstructured
def test_an_upload_named_like_a_sidecar_is_not_reported_as_a_document(tmp_path: Path) -> None:
    # Regression (issue 12, item 9): `x.meta.json` was reported as ingested with
    # 0 chunks, and GET /documents/x.meta.json then gave 404.
    with api_client(fake_settings(tmp_path), seed=False) as client:
        r = client.post("/documents", files=[("files", ("x.meta.json", b'{"a": 1}', "application/json"))],
                        data={"collection": "up"})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"]["errors"][0]["file"] == "x.meta.json"

        files = [("files", ("notes.txt", b"Zhiku serves hybrid search.", "text/plain")),
                 ("files", ("notes.txt.meta.json", json.dumps({"team": "b"}).encode(), "application/json")),
                 ("files", ("lone.meta.json", b"{}", "application/json"))]
        r = client.post("/documents", files=files, data={"collection": "up"})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["doc_ids"] == ["notes.txt"]
        assert [e["file"] for e in body["errors"]] == ["lone.meta.json"]  # the used sidecar is no error
        for doc_id in body["doc_ids"]:
            doc = client.get(f"/documents/{doc_id}", params={"collection": "up"})
            assert doc.status_code == 200 and doc.json()["metadata"]["team"] == "b"
