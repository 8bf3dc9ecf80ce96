"""Renderers for collections: an ingest's report, status, documents, removals, the list, drops."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from ragcli.console import streams
from ragcli.console.formats import cell, pairs, size_in_bytes, table
from ragcli.console.streams import note, print_json, stdout_is_terminal, write
from ragcli.manage import (
    CollectionStatus,
    CollectionSummary,
    DocumentList,
    DropReport,
    RemoveReport,
)
from ragcli.records import IngestReport


def render_ingest(report: IngestReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    if report.dry_run:
        _render_dry_run(report)
        return
    warned = f", {len(report.warnings)} with warnings" if report.warnings else ""
    write(
        f"collection '{report.collection}'{' rebuilt' if report.rebuilt else ''}: "
        f"{len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.removed)} removed, {len(report.unchanged)} unchanged, "
        f"{len(report.skipped)} skipped{warned}; {report.chunks_added} chunks added"
        + (f", {report.chunks_removed} removed" if report.chunks_removed else "")
        + f" ({report.seconds:.1f} s)\n"
    )


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
            ("last update", data["updated_at"]),
            ("created", status.created_at),
        ]
    )


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
