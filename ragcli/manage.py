"""Collections as a whole: status, the documents held, removing some, listing and dropping.

Each function opens the collection for as long as it needs and returns a record that knows how
to become JSON; ``cli.py`` only renders them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragcli.config import Settings
from ragcli.errors import RagcliError
from ragcli.pipeline.tuning import questions_file
from ragcli.records import utc_time
from ragcli.retrieval import TUNED_KEY, tuned
from ragcli.store import IndexDescription, Store, StoredDocument
from ragcli.store.location import (
    FolderLocation,
    PostgresLocation,
    forget_store,
    location_for,
    opened,
    remembered_stores,
)


@dataclass
class CollectionStatus:
    """What ``ragcli status`` shows of one collection."""

    collection: str
    path: str
    format_version: int
    embedder: dict[str, Any]
    chunking: dict[str, Any]
    documents: int
    files: int
    chunks: int
    index: IndexDescription
    disk_bytes: int
    updated_at: float | None
    created_at: str | None
    generation: int
    retrieval: dict[str, Any] | None = None  # what `ragcli tune` chose; None: the default
    files_with_warnings: int = 0  # files the loader read with a doubt (see `list --warnings`)
    files_with_ocr: int = 0  # files with text read by OCR

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "path": self.path,
            "format_version": self.format_version,
            "embedder": self.embedder,
            "chunking": self.chunking,
            "documents": self.documents,
            "files": self.files,
            "chunks": self.chunks,
            "index": self.index.to_dict(),
            "disk_bytes": self.disk_bytes,
            "updated_at": utc_time(self.updated_at),
            "created_at": self.created_at,
            "generation": self.generation,
            "retrieval": self.retrieval,
            "files_with_warnings": self.files_with_warnings,
            "files_with_ocr": self.files_with_ocr,
        }


def collection_status(settings: Settings) -> CollectionStatus:
    """Counts, settings, index kind and size of a collection; its vectors are checked too."""
    location = location_for(settings)
    location.recover()
    with opened(location) as store:  # loading the vectors checks them against the chunks
        counts = store.counts()
        manifest = store.manifest
        return CollectionStatus(
            collection=settings.collection,
            path=location.where,
            format_version=int(manifest.get("format_version", 0)),
            embedder=dict(manifest.get("embedder", {})),
            chunking=dict(manifest.get("chunking", {})),
            documents=counts["documents"],
            files=counts["files"],
            chunks=store.chunk_count,
            index=location.describe_index(store),
            disk_bytes=store.disk_bytes(),
            updated_at=store.updated_at,
            created_at=manifest.get("created_at"),
            generation=store.generation,
            retrieval=manifest.get(TUNED_KEY) if tuned(manifest) else None,
            files_with_warnings=counts["files_with_warnings"],
            files_with_ocr=counts["files_with_ocr"],
        )


@dataclass
class DocumentList:
    """What ``ragcli list`` shows: every document with its chunk count."""

    collection: str
    documents: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "documents": [
                {
                    "source": d["source"],
                    "path": d["path"],
                    "format": d["format"],
                    "title": d["title"],
                    "chunks": d["chunks"],
                    "size": d["size"],
                    "modified_at": utc_time(d["mtime"]),
                    "ingested_at": utc_time(d["ingested_at"]),
                    "pages": d.get("pages"),
                    "ocr_pages": json.loads(d["ocr_pages"]) if d.get("ocr_pages") else [],
                    "warnings": json.loads(d["warnings"]) if d.get("warnings") else [],
                }
                for d in self.documents
            ],
        }


def list_documents(settings: Settings) -> DocumentList:
    """The collection's documents, by source."""
    with opened(location_for(settings), load_vectors=False) as store:
        return DocumentList(settings.collection, store.document_details())


@dataclass
class RemoveReport:
    """What ``ragcli remove`` took out, and which arguments matched nothing."""

    collection: str
    removed: list[str] = field(default_factory=list)
    chunks_removed: int = 0
    not_found: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "removed": self.removed,
            "chunks_removed": self.chunks_removed,
            "not_found": self.not_found,
        }


def _matches(target: str, documents: list[StoredDocument]) -> list[StoredDocument]:
    """Documents a ``remove`` argument names: as shown, as a path, or a folder above them."""
    exact = [d for d in documents if target in (d.source, d.key)]
    if exact:
        return exact
    path = Path(target).expanduser()
    resolved = str(path.resolve()) if path.exists() else str(path.absolute())
    folder = resolved.rstrip("/") + "/"
    return [
        d
        for d in documents
        if d.file == resolved
        or d.file.startswith(folder)
        or d.source.startswith(target.rstrip("/") + "/")
    ]


def remove_documents(settings: Settings, targets: list[str]) -> RemoveReport:
    """Remove documents by source as shown, path as ingested (file or folder), in one commit."""
    report = RemoveReport(settings.collection)
    location = location_for(settings)
    location.recover()
    with opened(location, writable=True) as store:
        documents = store.documents()
        chosen: dict[str, StoredDocument] = {}
        for target in targets:
            matched = _matches(target, documents)
            if not matched:
                report.not_found.append(target)
            chosen.update((d.key, d) for d in matched)
        for document in sorted(chosen.values(), key=lambda d: d.source):
            report.chunks_removed += store.delete_documents([document.key])
            report.removed.append(document.source)
        store.save()
    return report


@dataclass
class CompactReport:
    """What ``ragcli compact`` did: the vector segments and bytes on disk before and after."""

    collection: str
    segments_before: int | None
    segments_after: int | None
    disk_bytes_before: int
    disk_bytes_after: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "segments_before": self.segments_before,
            "segments_after": self.segments_after,
            "disk_bytes_before": self.disk_bytes_before,
            "disk_bytes_after": self.disk_bytes_after,
        }


def compact(settings: Settings) -> CompactReport:
    """Merge the collection's vector segments into one without removed chunks' vectors, and
    give the space removed chunks took back (the collection stays readable throughout)."""
    location = location_for(settings)
    location.recover()
    with opened(location, writable=True) as store:
        before = location.describe_index(store).segments, store.disk_bytes()
        store.compact()
        after = location.describe_index(store).segments, store.disk_bytes()
    return CompactReport(settings.collection, before[0], after[0], before[1], after[1])


@dataclass
class CollectionSummary:
    """One line of ``ragcli collections``."""

    name: str
    documents: int | None = None
    chunks: int | None = None
    embedder: str | None = None
    disk_bytes: int | None = None
    updated_at: float | None = None
    problem: str | None = None  # why the collection cannot be read

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "documents": self.documents,
            "chunks": self.chunks,
            "embedder": self.embedder,
            "disk_bytes": self.disk_bytes,
            "updated_at": utc_time(self.updated_at),
            "problem": self.problem,
        }


def list_collections(settings: Settings) -> list[CollectionSummary]:
    """Every collection under ``$RAGCLI_HOME/collections`` and in the databases that
    collections were ingested into, from metadata (vectors not read)."""
    summaries = _folder_collections(settings) + _database_collections(settings)
    return sorted(summaries, key=lambda s: s.name)


def _database_collections(settings: Settings) -> list[CollectionSummary]:
    from ragcli.store import postgres_collections, postgres_db

    urls = set(remembered_stores(settings).values())
    if settings.store and postgres_db.is_url(settings.store):
        urls = {u for u in urls if u != postgres_db.without_password(settings.store)}
        urls.add(settings.store)
    summaries = []
    for url in sorted(urls):
        try:
            names = postgres_collections.collection_names(url)
        except RagcliError as e:
            summaries.append(CollectionSummary(postgres_db.redact(url), problem=e.message))
            continue
        for name in names:
            summary = CollectionSummary(name)
            try:
                with opened(PostgresLocation(url, name), load_vectors=False) as store:
                    _summarize(summary, store)
            except RagcliError as e:
                summary.problem = e.message
            summaries.append(summary)
    return summaries


def _summarize(summary: CollectionSummary, store: Store) -> None:
    counts = store.counts()
    summary.documents, summary.chunks = counts["documents"], counts["chunks"]
    summary.embedder = store.manifest["embedder"]["name"]
    summary.disk_bytes = store.disk_bytes()
    summary.updated_at = store.updated_at


def _folder_collections(settings: Settings) -> list[CollectionSummary]:
    root = settings.home / "collections"
    if not root.is_dir():
        return []
    for retired in root.glob(".*.old"):  # a replacement cut short: finish it first
        FolderLocation(root / retired.name[1 : -len(".old")]).recover()
    summaries = []
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        if directory.name.startswith("."):
            continue  # a rebuild or a drop in progress
        summary = CollectionSummary(directory.name)
        try:
            with opened(FolderLocation(directory), load_vectors=False) as store:
                _summarize(summary, store)
        except RagcliError as e:
            summary.problem = e.message
        summaries.append(summary)
    return summaries


@dataclass
class DropReport:
    """What ``ragcli collections drop`` deleted."""

    collection: str
    documents: int
    chunks: int
    disk_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "dropped": self.collection,
            "documents": self.documents,
            "chunks": self.chunks,
            "disk_bytes": self.disk_bytes,
        }


def describe_for_drop(settings: Settings) -> DropReport:
    """What dropping the collection would delete (for the confirmation question)."""
    location = location_for(settings)
    location.recover()
    if not location.exists():
        location.read_manifest()  # "does not exist", or "not a ragcli collection"
    try:
        with opened(location, load_vectors=False) as store:
            counts = store.counts()
            return DropReport(
                settings.collection, counts["documents"], counts["chunks"], store.disk_bytes()
            )
    except RagcliError:  # a damaged folder collection can still be dropped
        if not isinstance(location, FolderLocation):
            raise
        directory = settings.collection_dir
        size = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
        return DropReport(settings.collection, 0, 0, size)


def drop(settings: Settings) -> DropReport:
    """Delete the collection (refused while an ingest writes it)."""
    report = describe_for_drop(settings)
    location_for(settings).drop()
    forget_store(settings)
    questions_file(settings).unlink(missing_ok=True)  # what `tune` wrote about its passages
    return report
