"""Container health check: exit 0 when zhiku's /readyz answers 200, else 1.

The image's HEALTHCHECK runs it (no curl in a slim image); it reads the port
from ZHIKU_SERVER__PORT like the server does, and never leaves the container.

    python deploy/healthcheck.py [--url http://127.0.0.1:8000/readyz] [--timeout 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request


def default_url() -> str:
    """/readyz on loopback at the port the server was told to use."""
    return f"http://127.0.0.1:{os.environ.get('ZHIKU_SERVER__PORT', '8000')}/readyz"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=default_url())
    ap.add_argument("--timeout", type=float, default=4.0)
    args = ap.parse_args(argv)
    try:
        with urllib.request.urlopen(args.url, timeout=args.timeout) as response:
            ok = response.status == 200
    except (urllib.error.URLError, OSError) as exc:  # HTTPError (503 while loading) is a URLError
        print(f"not ready: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
