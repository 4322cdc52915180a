"""Walk the ingest roots: regular files to ingest, and a reason for everything else.

Symlinks to files are followed; symlinked directories too, but each real
directory is entered once, so a link loop ends as a reported skip instead of
an endless walk. FIFOs, devices and sockets are never opened (reading a FIFO
would block the run). Hidden files and folders are left alone, and
`NAME.meta.json` sidecars are metadata, not documents.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from zhiku.engine.identity import file_doc_id

SIDECAR = ".meta.json"


@dataclass(slots=True)
class FileEntry:
    """One file found under a root, with what the scan already knows about it."""

    path: Path
    root: Path
    doc_id: str
    size: int
    mtime: float
    sidecar: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ScanIssue:
    """A path that will not be ingested, and why."""

    path: str
    code: str
    reason: str


def _sidecar(path: Path) -> tuple[dict[str, Any], ScanIssue | None]:
    for candidate in (path.with_name(path.name + SIDECAR), path.with_name(path.stem + SIDECAR)):
        if candidate == path or not candidate.is_file():
            continue
        try:
            value = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return {}, ScanIssue(str(path), "bad_sidecar", f"sidecar {candidate.name} is unreadable JSON: {exc}")
        if not isinstance(value, dict):
            return {}, ScanIssue(str(path), "bad_sidecar", f"sidecar {candidate.name} is not a JSON object")
        return value, None
    return {}, None


def _entry(path: Path, root: Path, max_bytes: int) -> FileEntry | ScanIssue:
    try:
        st = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return ScanIssue(str(path), "symlink_loop", "symlink loop (the link points back at itself)")
        if exc.errno == errno.ENOENT and path.is_symlink():
            return ScanIssue(str(path), "broken_symlink", f"broken symlink to {os.readlink(path)}")
        return ScanIssue(str(path), "unreadable", f"cannot stat: {exc.strerror}")
    if not stat.S_ISREG(st.st_mode):
        what = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device"
        return ScanIssue(str(path), "not_a_file", f"not a regular file ({what})")
    if not os.access(path, os.R_OK):
        return ScanIssue(str(path), "unreadable", "permission denied")
    if st.st_size == 0:
        return ScanIssue(str(path), "empty", "empty file (0 bytes)")
    if st.st_size > max_bytes:
        return ScanIssue(
            str(path), "too_large",
            f"file is {st.st_size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB limit (--max-file-mb)",
        )
    meta, issue = _sidecar(path)
    if issue is not None:
        return issue
    return FileEntry(path, root, file_doc_id(path, root), st.st_size, st.st_mtime, meta)


def scan(root: Path, max_bytes: int) -> Iterator[FileEntry | ScanIssue]:
    """Files under a root (or the root itself when it is a file), in sorted order."""
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        yield _entry(root, root.parent, max_bytes)
        return
    seen_dirs: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                yield ScanIssue(str(folder), "symlink_loop", "directory already visited (symlink loop)")
                continue
            seen_dirs.add(key)
            names = sorted(os.listdir(folder))
        except OSError as exc:
            code = "symlink_loop" if exc.errno == errno.ELOOP else "unreadable"
            yield ScanIssue(str(folder), code, f"cannot list directory: {exc.strerror}")
            continue
        subdirs = []
        for name in names:
            if name.startswith(".") or name.endswith(SIDECAR):
                continue
            path = folder / name
            try:
                is_dir = path.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                subdirs.append(path)
            else:
                yield _entry(path, root, max_bytes)
        stack.extend(reversed(subdirs))
