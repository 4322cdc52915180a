"""`make run`'s last step: serve a collection, ask one question over HTTP, keep serving.

Starts `zhiku serve` as a child process, waits for /readyz, streams one
/ask answer (references, tokens, then the checked citations) to the
terminal, and then leaves the server running until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx


def wait_ready(base: str, server: subprocess.Popen, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"zhiku serve exited with status {server.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"server not ready after {timeout_s:.0f}s")


def ask(base: str, collection: str, question: str) -> None:
    print(f"\nQ: {question}\nA: ", end="", flush=True)
    body = {"question": question, "collection": collection, "stream": True}
    with httpx.stream("POST", f"{base}/ask", json=body, timeout=600) as response:
        response.raise_for_status()
        event = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = json.loads(line.split(":", 1)[1])
                if event == "token":
                    print(data["text"], end="", flush=True)
                elif event == "done":
                    print()
                    if data.get("refused"):
                        print("(refused: not found in the documents)")
                    for cite in data.get("citations", []):
                        print(f"  [{cite.get('n', '?')}] {cite.get('title') or cite.get('doc_id')}")
                elif event == "error":
                    print(f"\nerror: {data}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--collection", default="sample")
    ap.add_argument("--question", required=True)
    args = ap.parse_args()
    zhiku = Path(sys.executable).with_name("zhiku")
    server = subprocess.Popen([str(zhiku), "serve", "--data-dir", str(args.data_dir),
                               "--host", args.host, "--port", str(args.port)])
    base = f"http://{args.host}:{args.port}"
    try:
        wait_ready(base, server)
        ask(base, args.collection, args.question)
        print(f"\nzhiku is serving on {base} (API docs: {base}/docs); Ctrl-C stops it.")
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    raise SystemExit(main())
