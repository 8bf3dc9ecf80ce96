"""``ragcli ingest``: files into a collection."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ragcli.cli import inputs
from ragcli.cli.options import (
    ChunkOverlap,
    ChunkSize,
    Collection,
    Debug,
    DocumentPrompt,
    EmbedModel,
    Json,
    QueryPrompt,
    Quiet,
    Store,
    Vectors,
)
from ragcli.cli.root import boundary
from ragcli.errors import UsageError

Paths = Annotated[
    list[str] | None,
    typer.Argument(
        help="Files, folders (recursive) or glob patterns; with --rebuild and none, what "
        "the collection holds."
    ),
]
DryRun = Annotated[
    bool,
    typer.Option("--dry-run", help="Print what would be added, updated, removed; change nothing."),
]
Prune = Annotated[
    bool,
    typer.Option(
        "--prune/--no-prune",
        help="Remove files that are gone from a folder ingested again.",
    ),
]
Rebuild = Annotated[
    bool,
    typer.Option(
        "--rebuild",
        help="Re-embed everything into a new collection (embedder and chunking may "
        "change) and swap it in when done; the old one stays until then.",
    ),
]
Shard = Annotated[
    str | None,
    typer.Option(
        "--shard",
        metavar="K/N",
        help="Take the K-th of N shares of the files (by a hash of each file's path under "
        "its folder), so N ingesters, on one machine or many, fill one collection together.",
    ),
]
Watch = Annotated[
    bool,
    typer.Option(
        "--watch",
        help="After ingesting, keep watching the paths: sync each burst of changes (added, "
        "changed, deleted, renamed files), one line per change on stderr, until Ctrl-C or "
        "SIGTERM (exit 0; then the summary of the whole watch).",
    ),
]
ReportFile = Annotated[
    str | None,
    typer.Option(
        "--report",
        metavar="FILE",
        help="Write what was read of each file to FILE as JSON Lines ('-': stdout): format, "
        "pages, characters per page, empty and OCR'd pages, share of garbled words, chunks, "
        "warnings. On a terminal, a table by format follows the summary.",
    ),
]
IgnoreGlob = Annotated[
    list[str] | None,
    typer.Option(
        "--ignore",
        metavar="GLOB",
        help="Leave out files and folders whose name matches GLOB, or, with a '/', whose path "
        "under the folder given does (repeatable; editors' temporary files, .git and the "
        "like always are).",
    ),
]


def ingest(
    paths: Paths = None,
    collection: Collection = None,
    embed_model: EmbedModel = None,
    query_prompt: QueryPrompt = None,
    document_prompt: DocumentPrompt = None,
    chunk_size: ChunkSize = None,
    chunk_overlap: ChunkOverlap = None,
    vectors: Vectors = None,
    dry_run: DryRun = False,
    prune: Prune = True,
    rebuild: Rebuild = False,
    shard: Shard = None,
    watch: Watch = False,
    ignore: IgnoreGlob = None,
    report_file: ReportFile = None,
    store: Store = None,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Read files into a collection: split, embed and index what is new or changed."""
    from ragcli import console, pipeline

    with boundary(debug):
        if watch:
            refuse_with_watch(dry_run=dry_run, rebuild=rebuild, shard=shard is not None)
        if report_file is not None:
            check_report(report_file, json_, watch=watch, dry_run=dry_run)
        settings = inputs.settings(
            collection=collection,
            embed_model=embed_model,
            query_prompt=query_prompt,
            document_prompt=document_prompt,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            vectors=vectors,
            store=store,
        )
        events = console.ConsoleEvents(quiet)
        if watch:
            report = pipeline.watch(settings, paths or [], events, prune, ignore or [])
        else:
            report = pipeline.ingest(
                settings,
                paths or [],
                events,
                dry_run=dry_run,
                prune=prune,
                rebuild=rebuild,
                shard=parse_shard(shard),
                ignore=ignore or [],
            )
        if report_file is not None:
            console.write_file_reports(report, report_file)
        console.render_ingest(
            report, json_, by_format=report_file is not None, to_stderr=report_file == "-"
        )


def check_report(target: str, json_: bool, watch: bool, dry_run: bool) -> None:
    """Refuse an ``--report`` that cannot be written, before anything is read."""
    if watch or dry_run:
        given = "--watch" if watch else "--dry-run"
        raise UsageError(
            f"--report goes with an ingest that reads files, not with {given}",
            "run `ragcli ingest PATH... --report FILE` once",
        )
    if target == "-":
        if json_:
            raise UsageError(
                "--report - and --json both write to stdout", "give --report a file name"
            )
        return
    folder = Path(target).parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write the report to {target}: no writable folder {folder}")


_NOT_WITH_WATCH = {
    "dry_run": ("--dry-run", "`ragcli ingest --dry-run PATH...` shows what one sync would do"),
    "rebuild": ("--rebuild", "rebuild first (`ragcli ingest --rebuild`), then watch"),
    "shard": ("--shard", "watch with one ingester, without --shard"),
}


def refuse_with_watch(**given: bool) -> None:
    """``--watch`` keeps a collection in step in place: no plan, rebuild or share of files."""
    for name, on in given.items():
        if on:
            flag, hint = _NOT_WITH_WATCH[name]
            raise UsageError(f"--watch cannot be combined with {flag}", hint)


def parse_shard(value: str | None) -> tuple[int, int] | None:
    """``K/N`` as (K, N), 1 <= K <= N."""
    if value is None:
        return None
    k, _, n = value.partition("/")
    if k.strip().isdigit() and n.strip().isdigit() and 1 <= int(k) <= int(n):
        return int(k), int(n)
    raise UsageError(f"invalid --shard {value!r}", "use K/N with 1 <= K <= N, e.g. --shard 2/4")
