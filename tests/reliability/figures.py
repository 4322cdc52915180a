"""Print the figures table of issue 12 from the JSON lines the reliability suites wrote."""

from __future__ import annotations

import json
import sys
from pathlib import Path

# (suite, figure, the value that must be 0), in the order.
ROWS = [
    ("Hostile files", "tried / crashed", "crashed"),
    ("Hostile requests", "tried / crashed", "crashed"),
    ("Fuzz requests", "sent / 5xx", "5xx"),
    ("Crash runs", "runs / inconsistent", "inconsistent"),
    ("Concurrent operations", "operations / errors", "errors"),
    ("Cross-collection attempts", "tried / leaked", "leaked"),
    ("Outbound connection attempts", "attempts", "attempts"),
]


def main(path: Path) -> int:
    got: dict[str, dict[str, int]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            acc = got.setdefault(row["suite"], {})
            for key, value in row["values"].items():
                acc[key] = acc.get(key, 0) + int(value)
    print("| Suite | Figure | Value | Must be |")
    print("|---|---|---|---|")
    bad = 0
    for suite, figure, zero in ROWS:
        values = got.get(suite)
        if values is None:
            print(f"| {suite} | {figure} | not run | {zero} 0 |")
            bad += 1
            continue
        shown = " / ".join(str(values.get(k.strip(), 0)) for k in figure.split("/"))
        bad += values.get(zero, 0) != 0
        print(f"| {suite} | {figure} | {shown} | {zero} 0 |")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
