"""`zhiku ingest PATH`: incremental, crash-safe ingest of a file tree into a collection."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)
from rich.table import Table

from zhiku.cli.common import Collection, DataDir, console, engine_for, make_settings, print_json
from zhiku.engine.errors import ZhikuError
from zhiku.engine.filters import parse_filter_args
from zhiku.engine.writes import DocumentWriter, PlannedCollection
from zhiku.ingest.pipeline import IngestOptions, ingest_paths
from zhiku.ingest.report import PageProgress, Summary, write_report


class RichObserver:
    """A progress bar over files plus a live chunks/s readout, and one over OCR'd pages."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.files: TaskID | None = None
        self.pages: TaskID | None = None
        self.page_counts: dict[str, tuple[int, int]] = {}  # path -> (done, total)
        self.started = time.perf_counter()
        self.chunks = 0

    def planned(self, summary: Summary, to_parse: int) -> None:
        self.started = time.perf_counter()
        self.files = self.progress.add_task("parsing", total=to_parse, rate="")

    def file_done(self, path: str, ok: bool) -> None:
        if self.files is not None:
            self.progress.advance(self.files)

    def pages_done(self, progress: PageProgress) -> None:
        self.page_counts[progress.path] = (progress.done, progress.total)
        done = sum(d for d, _ in self.page_counts.values())
        total = sum(t for _, t in self.page_counts.values())
        if self.pages is None:
            self.pages = self.progress.add_task("OCR pages", total=total, rate="")
        self.progress.update(self.pages, completed=done, total=total,
                             rate=f"{len(self.page_counts)} file(s)")

    def chunks_done(self, embedded: int) -> None:
        self.chunks += embedded
        rate = self.chunks / max(1e-6, time.perf_counter() - self.started)
        if self.files is not None:
            self.progress.update(self.files, rate=f"{self.chunks} chunks, {rate:.0f}/s")


def _summary_table(collection: str, s: Summary) -> Table:
    table = Table(title=f"ingest into {collection!r}" + (" (dry run)" if s.dry_run else ""))
    table.add_column("what")
    table.add_column("count", justify="right")
    rows = [
        ("files seen", s.files), ("new", s.new), ("changed", s.changed), ("resumed", s.resumed),
        ("unchanged", s.unchanged), ("failed or skipped", s.failed),
        ("known bad (skipped)", s.known_bad), ("documents written", s.docs_written),
        ("documents pruned", s.docs_pruned), ("records removed", s.docs_removed),
        ("chunks embedded", s.chunks_embedded), ("chunks reused", s.chunks_reused),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    table.add_row("seconds", f"{s.seconds:.1f}")
    table.add_row("chunks/s", f"{s.chunks_per_s:.1f}")
    return table


def _plan_only(engine: Any, collection: str) -> DocumentWriter:
    # A dry run must not create the collection just to find it empty.
    if engine.store.has_collection(engine.store.resolve(collection)):
        return engine.kb(collection)
    return PlannedCollection(engine.store, collection, engine.settings, engine.embedder)


def ingest(
    path: Annotated[Path, typer.Argument(help="A file or a directory to ingest.")],
    collection: Collection = "default",
    prune: Annotated[bool, typer.Option("--prune", help="Delete documents whose files are gone.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit non-zero if any file fails.")] = False,
    meta: Annotated[Optional[list[str]], typer.Option("--meta", help="k=v metadata for every document.")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write per-file errors as JSONL.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=0, help="Parse processes (0: parse in this process).")] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds allowed per file (an OCR'd file: since its last page).")] = 120.0,
    max_file_mb: Annotated[float, typer.Option("--max-file-mb", min=0.001, help="Skip larger files.")] = 20.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Parse files that failed before even if they have not changed.")] = False,
    ocr: Annotated[Optional[str], typer.Option(
        "--ocr", help="auto: OCR images and scanned PDF pages; force: every PDF page; off: none.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Ingest documents (txt md html pdf docx pptx xlsx csv eml json jsonl, BEIR corpora;
    scans and photos by OCR: png jpg tiff bmp webp, image-only and mixed PDFs).

    Unchanged files cost nothing; changed files are replaced; a killed run can
    simply be run again. Exit status is non-zero only when nothing could be
    ingested, or with --strict when any file failed.
    """
    if not path.exists() and not path.is_symlink():
        console.print(f"[red]error:[/red] {path} does not exist")
        raise typer.Exit(2)
    try:
        user_meta = parse_filter_args(meta)
    except ZhikuError as exc:
        console.print(f"[red]error:[/red] {exc.message.replace('filter', '--meta')}")
        raise typer.Exit(2) from exc
    defaults = IngestOptions()
    options = IngestOptions(
        workers=defaults.workers if workers is None else workers, timeout_s=timeout, max_file_mb=max_file_mb,
        prune=prune, dry_run=dry_run, meta=user_meta, retry_failed=retry_failed,
    )
    settings = make_settings(data_dir, ingest__ocr=ocr)
    with engine_for(settings) as engine:
        kb = _plan_only(engine, collection) if dry_run else engine.kb(collection, create=True)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            summary = ingest_paths(kb, [path], options, RichObserver(progress))
    if dry_run:
        for action, target in summary.plan:
            typer.echo(f"{action}\t{target}")
    for problem in summary.problems:
        colour = "red" if problem.level == "error" else "yellow"
        console.print(f"[{colour}]{problem.level}[/{colour}] {problem.path}: {problem.reason}")
    if report is not None:
        write_report(report, summary.problems)
    if as_json:
        print_json(summary.as_dict())
    else:
        console.print(_summary_table(collection, summary))
    if not summary.ingested_any and not (dry_run and summary.files):
        console.print("[red]nothing was ingested[/red]")
        raise typer.Exit(1)
    if strict and summary.errors:
        raise typer.Exit(1)
