"""Export the default embedding model (MiniLM-L6) to ONNX into .models/ (idempotent).

    python deploy/export_onnx.py [--dest DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zhiku.engine.embedders.onnx_export import export
from zhiku.engine.embedders.sentence_transformers import ONNX_FILE, default_model_path
from zhiku.engine.models import REPO_ROOT


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", type=Path, default=REPO_ROOT / ".models")
    args = ap.parse_args()
    target = export(default_model_path(), args.dest / ONNX_FILE)
    print(f"ok: {target} (verified against the torch model)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
