"""`zhiku ingest` through Typer's CliRunner: exit codes, report, dry run, --meta."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zhiku.cli import app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ZHIKU_EMBED__BACKEND", "fake")
    monkeypatch.setenv("ZHIKU_CONFIG", str(tmp_path / "absent.toml"))
    return tmp_path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["ingest", *args, "--workers", "0"])
    return result.exit_code, result.stdout


def test_ingest_report_dry_run_and_strict(env: Path) -> None:
    docs = env / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Good\n\nA fine document.\n")
    (docs / "bad.txt").write_bytes(b"\x7fELF" + b"\0" * 100)
    data, report = str(env / "data"), env / "errors.jsonl"

    code, out = _run(str(docs), "--data-dir", data, "-c", "c", "--dry-run")
    assert code == 0 and f"add\t{docs / 'good.md'}" in out
    assert not (env / "data" / "collections" / "c").exists()  # a dry run creates nothing

    code, out = _run(str(docs), "--data-dir", data, "-c", "c", "--report", str(report), "--meta", "lang=en", "--json")
    summary = json.loads(out[out.index("{"):])
    assert code == 0 and summary["new"] == 1 and summary["errors"] == 1
    (line,) = report.read_text().splitlines()
    assert json.loads(line)["code"] == "binary" and json.loads(line)["path"].endswith("bad.txt")

    code, _ = _run(str(docs), "--data-dir", data, "-c", "c", "--strict")
    assert code == 1  # one file failed, and --strict says that is failure


def test_nothing_ingested_is_an_error(env: Path) -> None:
    docs = env / "docs"
    docs.mkdir()
    (docs / "empty.txt").write_bytes(b"")
    code, _ = _run(str(docs), "--data-dir", str(env / "data"))
    assert code == 1
    code, _ = _run(str(env / "missing"), "--data-dir", str(env / "data"))
    assert code == 2
