"""Renderers for collections: an ingest's report, status, documents, removals, the list, drops."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.markup import escape

from ragcli.console import streams
from ragcli.console.formats import cell, pairs, size_in_bytes, table
from ragcli.console.streams import note, print_json, stdout_is_terminal, write
from ragcli.errors import UsageError
from ragcli.manage import (
    CollectionStatus,
    CollectionSummary,
    CompactReport,
    DocumentList,
    DropReport,
    RemoveReport,
)
from ragcli.records import IngestReport


def render_ingest(
    report: IngestReport, as_json: bool, by_format: bool = False, to_stderr: bool = False
) -> None:
    """The summary of an ingest (on stderr with ``to_stderr``, stdout then carrying the
    per-file report); with ``by_format``, on a terminal, what was read, by format."""
    if as_json:
        print_json(report.to_dict())
        return
    if report.dry_run:
        _render_dry_run(report)
        return
    warned = f", {len(report.warnings)} with warnings" if report.warnings else ""
    (sys.stderr.write if to_stderr else write)(
        f"collection '{report.collection}'{' rebuilt' if report.rebuilt else ''}: "
        f"{len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.removed)} removed, {len(report.unchanged)} unchanged, "
        f"{len(report.skipped)} skipped{warned}; {report.chunks_added} chunks added"
        + (f", {report.chunks_removed} removed" if report.chunks_removed else "")
        + f" ({report.seconds:.1f} s)\n"
    )
    if by_format and stdout_is_terminal() and not to_stderr:
        _render_formats(report)


def write_file_reports(report: IngestReport, target: str) -> None:
    """``ingest --report``: one JSON object per file seen, to ``target`` ('-': stdout)."""
    lines = "".join(json.dumps(f.to_dict(), ensure_ascii=False) + "\n" for f in report.files)
    if target == "-":
        write(lines)
        return
    try:
        Path(target).write_text(lines, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write the report to {target}: {e.strerror or e}") from e


def _render_formats(report: IngestReport) -> None:
    """Files read, by format: pages, characters per page, empty and OCR'd pages, garbled share,
    chunks and warnings, so a big folder's reading can be trusted at a glance."""
    read = [f for f in report.files if f.status in ("added", "updated")]
    if not read and not report.skipped:
        return
    shown = table(
        "format", "files>", "pages>", "chars/page>", "empty pages>", "OCR pages>", "garbled>",
        "chunks>", "warnings>",
    )  # fmt: skip
    for fmt in sorted({f.format or "?" for f in read}):
        files = [f for f in read if (f.format or "?") == fmt]
        pages = sum(f.pages or 0 for f in files)
        paged = [f for f in files if f.pages]
        per_page = (
            str(round(sum(f.characters_per_page or 0 for f in paged) / len(paged)))
            if paged else "-"
        )  # fmt: skip
        words = sum(f.characters for f in files) or 1
        garbled = sum(f.garbled * f.characters for f in files) / words
        shown.add_row(
            fmt, str(len(files)), str(pages) if paged else "-", per_page,
            str(sum(f.empty_pages or 0 for f in files)), str(sum(f.ocr_pages for f in files)),
            f"{garbled:.1%}", str(sum(f.chunks for f in files)),
            str(sum(1 for f in files if f.warnings)),
        )  # fmt: skip
    if report.skipped:
        shown.add_row("skipped", str(len(report.skipped)), *[""] * 7)
    streams.out().print(shown)


def _render_dry_run(report: IngestReport) -> None:
    """One line per file with what would happen to it, then the counts."""
    for action, paths in (
        ("add", report.added),
        ("update", report.updated),
        ("remove", report.removed),
        ("unchanged", report.unchanged),
    ):
        for path in paths:
            write(f"{action}\t{path}\n")
    for skipped in report.skipped:
        write(f"skip\t{skipped.path}\t{skipped.reason}\n")
    what = "rebuilding collection" if report.rebuilt else "collection"
    write(
        f"dry run for {what} '{report.collection}': {len(report.added)} to add, "
        f"{len(report.updated)} to update, {len(report.removed)} to remove, "
        f"{len(report.unchanged)} unchanged, {len(report.skipped)} skipped\n"
    )


def render_status(status: CollectionStatus, as_json: bool) -> None:
    if as_json:
        print_json(status.to_dict())
        return
    data = status.to_dict()
    kind = status.index.summary
    terminal = stdout_is_terminal()
    pairs(
        [
            ("collection", status.collection),
            ("path", status.path),
            ("format version", status.format_version),
            ("embedder", status.embedder.get("name")),
            ("dimension", status.embedder.get("dimension")),
            ("query prompt", repr(status.embedder.get("query_prompt", ""))),
            ("document prompt", repr(status.embedder.get("document_prompt", ""))),
            ("chunk size", status.chunking.get("chunk_size")),
            ("chunk overlap", status.chunking.get("chunk_overlap")),
            ("documents", status.documents),
            ("files", status.files),
            ("chunks", status.chunks),
            ("index", kind),
            ("size on disk", size_in_bytes(status.disk_bytes) if terminal else status.disk_bytes),
            ("retrieval", _retrieval(status.retrieval)),
            ("read with warnings", _files(status.files_with_warnings, "ragcli list --json")),
            ("read by OCR", _files(status.files_with_ocr, "")),
            ("last update", data["updated_at"]),
            ("created", status.created_at),
        ]
    )


def _files(count: int, where: str) -> str:
    if not count:
        return "none"
    text = f"{count} file{'s' if count != 1 else ''}"
    return f"{text} (`{where}` lists them)" if where else text


def _retrieval(tuned: dict[str, Any] | None) -> str:
    if not tuned:
        return "default (hybrid: normalised-score fusion, 0.6 dense, dense feedback)"
    return (
        f"tuned: {tuned.get('label')} (nDCG@10 {tuned.get('ndcg@10')} against "
        f"{tuned.get('default_ndcg@10')} for the default on {tuned.get('questions')} "
        f"{'synthetic questions' if tuned.get('source') == 'synthetic' else 'judged queries'}, "
        f"{tuned.get('tuned_at')})"
    )


def render_documents(listing: DocumentList, as_json: bool) -> None:
    if as_json:
        print_json(listing.to_dict())
        return
    documents = listing.to_dict()["documents"]
    if not stdout_is_terminal():
        for d in documents:
            fields = [d["source"], d["chunks"], d["size"], d["format"], d["ingested_at"]]
            write("\t".join(str(f) for f in fields) + "\n")
        return
    shown = table("source", "format", "chunks>", "size>", "ingested")
    shown.title = f"collection '{listing.collection}': {len(documents)} documents"
    for d in documents:
        size, ingested = size_in_bytes(d["size"]), d["ingested_at"] or ""
        shown.add_row(escape(d["source"]), d["format"], str(d["chunks"]), size, ingested)
    streams.out().print(shown)


def render_removed(report: RemoveReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    for source in report.removed:
        write(f"removed\t{source}\n")
    write(
        f"collection '{report.collection}': {len(report.removed)} document(s) removed, "
        f"{report.chunks_removed} chunks\n"
    )


def render_compacted(report: CompactReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    segments = ""
    if report.segments_before is not None:
        segments = f"{report.segments_before} -> {report.segments_after} vector segments, "
    write(
        f"collection '{report.collection}' compacted: {segments}"
        f"{size_in_bytes(report.disk_bytes_before)} -> {size_in_bytes(report.disk_bytes_after)}\n"
    )


def render_collections(collections: list[CollectionSummary], as_json: bool) -> None:
    if as_json:
        print_json({"collections": [c.to_dict() for c in collections]})
        return
    rows = [c.to_dict() for c in collections]
    if not stdout_is_terminal():
        keys = ("name", "documents", "chunks", "disk_bytes", "updated_at", "embedder")
        for r in rows:
            fields = [r[key] for key in (*keys, "problem")]
            write("\t".join("" if f is None else cell(str(f)) for f in fields) + "\n")
        return
    if not rows:
        note("no collections yet: `ragcli ingest PATH` makes one")
        return
    shown = table("collection", "documents>", "chunks>", "size>", "updated", "embedder")
    for c, r in zip(collections, rows):
        name = f"[bold]{escape(c.name)}[/]"
        if c.problem:
            shown.add_row(name, "", "", "", "", f"[red]{escape(c.problem)}[/]")
            continue
        counts = (str(c.documents), str(c.chunks), size_in_bytes(c.disk_bytes))
        shown.add_row(name, *counts, r["updated_at"] or "", escape(c.embedder or ""))
    streams.out().print(shown)


def render_dropped(report: DropReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    write(
        f"dropped collection '{report.collection}' ({report.documents} documents, "
        f"{report.chunks} chunks, {size_in_bytes(report.disk_bytes)})\n"
    )
