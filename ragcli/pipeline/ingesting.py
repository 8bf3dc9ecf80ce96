"""The ingest use case: new, changed and gone files brought in step; rebuilds; dry runs."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragcli import loaders, prefetch
from ragcli.chunking import split_document
from ragcli.config import Settings
from ragcli.errors import LoaderError, NothingIngestedError, RagcliError, UsageError
from ragcli.models import embedding
from ragcli.models.bundled_generator import sha256_of
from ragcli.models.embedding import Embedder, embedder_for, embedder_name
from ragcli.pipeline.checks import check_compatible
from ragcli.pipeline.events import Events
from ragcli.pipeline.exporting import export_for_queries
from ragcli.pipeline.inputs import Found, InputFile, collect_inputs, in_shard, shard_of
from ragcli.records import Chunk, Document, IngestReport, SkippedFile
from ragcli.store import Store, StoredDocument, make_manifest
from ragcli.store.location import Location, location_for, remember_store

DEFAULT_CHUNK_SIZE = 200
DEFAULT_CHUNK_OVERLAP = 32
EMBED_BATCH_CHUNKS = 512  # chunks embedded together before they are added to the index


class IngestInterrupted(RagcliError):
    """Ctrl-C during ingest: what was committed before stays."""

    exit_code = 130


def ingest(
    settings: Settings,
    arguments: list[str],
    events: Events | None = None,
    dry_run: bool = False,
    prune: bool = True,
    rebuild: bool = False,
    shard: tuple[int, int] | None = None,
) -> IngestReport:
    """Bring the collection in step with the files named.

    New and changed files are (re-)embedded, unchanged ones skipped, unreadable ones reported,
    and files gone from a folder ingested again removed (unless ``prune`` is off). ``rebuild``
    re-embeds everything into a new collection that replaces the old one at the end; with no
    arguments it reads again what the collection holds. ``shard`` (K, N) takes the K-th of N
    shares of the files, so N ingesters together do what one does alone.
    """
    events = events or Events()
    started = time.perf_counter()
    if shard is not None and rebuild:
        raise UsageError("--shard cannot be combined with --rebuild", "rebuild with one ingester")
    location = location_for(settings)
    location.recover()
    exists = location.exists()
    report = IngestReport(
        collection=settings.collection, dry_run=dry_run, rebuilt=rebuild and exists
    )
    if not arguments and not report.rebuilt:
        hint = "give files, folders or glob patterns; --rebuild alone re-reads a collection"
        raise UsageError("missing PATH", hint)
    if report.rebuilt:
        _rebuild(settings, location, arguments, events, report)
    else:
        _update(settings, location, arguments, events, report, exists, prune, shard)
    if report.chunks_added and not dry_run:
        export_for_queries(settings, events)
    report.seconds = time.perf_counter() - started
    return report


def _new_collection(settings: Settings, base: dict[str, Any] | None) -> tuple[Embedder, dict]:
    """The embedder and manifest of a collection made now: settings first, then ``base``'s."""
    recorded = (base or {}).get("embedder", {})
    name = settings.embed_model or recorded.get("name")
    same = base is not None and embedder_name(name) == recorded.get("name")
    query_prompt, document_prompt = (
        given if given is not None else (recorded.get(key) if same else None)
        for given, key in (
            (settings.query_prompt, "query_prompt"),
            (settings.document_prompt, "document_prompt"),
        )
    )
    embedder = embedding.open_embedder(
        name, settings.batch_size, query_prompt, document_prompt, settings.embed_precision
    )
    old = (base or {}).get("chunking", {})
    overlaps = (settings.chunk_overlap, old.get("chunk_overlap"), DEFAULT_CHUNK_OVERLAP)
    chunking = {
        "chunk_size": settings.chunk_size or old.get("chunk_size") or DEFAULT_CHUNK_SIZE,
        "chunk_overlap": next(v for v in overlaps if v is not None),
    }
    manifest = make_manifest(
        settings.collection, embedder.name, embedder.dimension, embedder.max_tokens, chunking
    )
    manifest["embedder"].update(embedder.prompt_record())
    return embedder, manifest


def _nothing_ingested(report: IngestReport) -> NothingIngestedError:
    return NothingIngestedError(
        f"nothing ingested: all {len(report.skipped)} input(s) were skipped",
        "see the warnings above",
    )


def _update(
    settings: Settings,
    location: Location,
    arguments: list[str],
    events: Events,
    report: IngestReport,
    exists: bool,
    prune: bool,
    shard: tuple[int, int] | None = None,
) -> None:
    """Ingest into the collection in place, committing whole files as it goes."""
    found = collect_inputs(arguments, report.skipped, events)
    empty_shard = False
    if shard is not None:
        everything = len(found.inputs)
        found.inputs = [item for item in found.inputs if in_shard(item, shard)]
        # A small corpus can leave a shard nothing to do; the other shards have it.
        empty_shard = everything > 0 and not found.inputs
        if empty_shard:
            events.status(f"shard {shard[0]}/{shard[1]} holds none of the {everything} file(s)")
    if exists:
        check_compatible(location.read_manifest(), settings)
    if report.dry_run:
        store = location.open(load_vectors=False) if exists else None
        try:
            _plan(store, found, report, prune, shard)
        finally:
            if store:
                store.close()
        return
    if empty_shard and not (exists and prune and found.folders):
        return
    if not found.inputs and not (exists and prune and found.folders):
        raise NothingIngestedError(
            "nothing to ingest: no readable file of a supported type was given",
            "supported: .txt .md .rst .html .htm .pdf .jsonl; see the warnings above",
        )
    if exists:
        store = location.open(writable=True)
        location.discard_staging()  # a rebuild that died; we hold the lock it held
        embedder = embedder_for(store.manifest, settings)
    else:
        embedder, manifest = _new_collection(settings, None)
        store = location.create(manifest)
    remember_store(settings)
    try:
        gone = _prunable(store, found, shard) if prune else []
        _Sync(store, embedder, report, events, settings).run(found.inputs, gone)
    except KeyboardInterrupt:
        store.rollback()
        committed = len(store.documents())
        raise IngestInterrupted(
            f"interrupted; collection {settings.collection!r} keeps the {committed} "
            "document(s) committed before",
            "run the same ingest again to continue where it stopped",
        ) from None
    finally:
        empty = store.generation == 0
        store.close()
        if not exists and empty:
            location.discard_new(store)
    done = report.added or report.updated or report.unchanged or report.removed
    if not done and not empty_shard:
        raise _nothing_ingested(report)


def _rebuild(
    settings: Settings,
    location: Location,
    arguments: list[str],
    events: Events,
    report: IngestReport,
) -> None:
    """Embed everything anew into a staging collection, then swap it in for the collection."""
    old = location.open_for_rebuild()  # keeps other writers out throughout
    try:
        location.discard_staging()
        found = collect_inputs(arguments or old.ingest_arguments(), report.skipped, events)
        kept = {str(item.path) for item in found.inputs}
        gone = [d for d in _by_file(old.documents()) if d.file not in kept]
        if report.dry_run:
            report.added = [item.source for item in found.inputs]
            report.removed = [_file_source(d) for d in gone]
            return
        if not found.inputs:
            raise _nothing_ingested(report)
        embedder, manifest = _new_collection(settings, old.manifest)
        new = location.create_staging(manifest, old.generation)
        try:
            _Sync(new, embedder, report, events, settings, periodic=False).run(found.inputs, [])
            if not report.added:
                raise _nothing_ingested(report)
        except BaseException:
            location.abandon_staging(new)
            raise
        report.removed = [_file_source(d) for d in gone]
        report.chunks_removed = old.counts()["chunks"]
        location.publish_staging(new, old)
    except KeyboardInterrupt:
        raise IngestInterrupted(
            f"interrupted; collection {settings.collection!r} is as it was before the rebuild",
            "run the rebuild again",
        ) from None
    finally:
        old.close()


def _by_file(documents: Iterable[StoredDocument]) -> list[StoredDocument]:
    """One document per file (a .jsonl corpus holds many)."""
    return list({d.file: d for d in reversed(list(documents))}.values())[::-1]


def _file_source(document: StoredDocument) -> str:
    """How a stored document's file is shown: its source, less a .jsonl record's ``#id``."""
    if document.key != document.file:
        return document.source.rsplit("#", 1)[0]
    return document.source


def _disappeared(document: StoredDocument) -> bool:
    """Whether the file a folder ingest found at ``origin`` is no longer there."""
    try:
        now = Path(document.origin or "").resolve(strict=True)
    except PermissionError:
        return False  # cannot look: keep it
    except (OSError, RuntimeError):
        return True  # gone, a broken link, or a link loop
    return now != Path(document.file) or not now.is_file()


def _prunable(
    store: Store, found: Found, shard: tuple[int, int] | None = None
) -> list[StoredDocument]:
    """Files ingested from one of these folders that are no longer in it (one per file).

    With a shard, only files of that shard: each gone file is removed by exactly one ingester.
    """
    present = {str(item.path) for item in found.inputs}
    gone: dict[str, StoredDocument] = {}
    for folder in found.folders:
        for document in store.documents_from_folder(folder):
            candidate = document.file not in present and document.file not in gone
            if shard is not None and candidate:
                owner = shard_of(document.root, document.origin, document.file, shard[1])
                candidate = owner == shard[0]
            if candidate and _disappeared(document):
                gone[document.file] = document
    return list(gone.values())


def _plan(
    store: Store | None,
    found: Found,
    report: IngestReport,
    prune: bool,
    shard: tuple[int, int] | None = None,
) -> None:
    """Classify inputs as new, changed or unchanged, and list what pruning would remove.

    No model is loaded. A file whose size or mtime changed is hashed, so a file that was only
    touched shows as unchanged, as the ingest itself would find.
    """
    for item in found.inputs:
        stored = store.documents_of_file(str(item.path)) if store else []
        if not stored:
            report.added.append(item.source)
            continue
        try:
            same = _same_stat(item.path, stored) or sha256_of([item.path]) == stored[0].sha256
        except OSError as e:
            report.skipped.append(SkippedFile(item.source, str(e)))
            continue
        (report.unchanged if same else report.updated).append(item.source)
    if store and prune:
        report.removed = [_file_source(d) for d in _prunable(store, found, shard)]


def _same_stat(path: Path, stored: list[StoredDocument]) -> bool:
    try:
        stat = path.stat()
    except OSError:  # gone or unreadable now: reading it will say so
        return False
    return all(d.size == stat.st_size and d.mtime == stat.st_mtime for d in stored)


@dataclass
class _Pending:
    """A file loaded and chunked, waiting for its vectors."""

    item: InputFile
    documents: list[tuple[Document, list[Chunk]]]
    replacing: bool
    root: str | None
    origin: str | None

    @property
    def chunk_count(self) -> int:
        return sum(len(chunks) for _, chunks in self.documents)


@dataclass
class _Read:
    """One file as read ahead: its documents, and their chunks unless its content is known."""

    documents: list[Document]
    chunks: list[list[Chunk]] | None


class _Sync:
    """One pass that brings a store in step with input files, committing whole files.

    Commits happen between files only (every ``settings.commit_every`` seconds, or after each
    file when it is 0, unless ``periodic`` is off) and at the end.
    """

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        report: IngestReport,
        events: Events,
        settings: Settings,
        periodic: bool = True,
    ) -> None:
        self.store, self.embedder, self.report, self.events = store, embedder, report, events
        self.settings = settings
        self.periodic = periodic
        self.every_file = periodic and settings.commit_every == 0
        self.chunking = store.manifest["chunking"]
        self.max_bytes = settings.max_file_mb * 2**20
        # Recorded when the collection was made: asking the embedder would load its model
        # (and import torch) before anything is known to need embedding.
        self.max_tokens = store.manifest["embedder"].get("max_tokens") or embedder.max_tokens
        self.known: dict[str, list[StoredDocument]] = {}
        self.pending: list[_Pending] = []
        self.last_commit = time.monotonic()

    def read(self, item: InputFile, known_sha256: str | None = None) -> _Read:
        """Load and chunk one file (in the read-ahead thread: no store access here).

        A file whose content hashes to ``known_sha256`` is not chunked: chunking counts
        tokens with the embedder's tokenizer, which loads the model.
        """
        documents = loaders.load_documents(item.path, item.source, item.doc_id, self.max_bytes)
        if known_sha256 is not None and documents and documents[0].sha256 == known_sha256:
            return _Read(documents, None)
        chunks = [
            split_document(
                document,
                self.embedder.count_tokens,
                self.chunking["chunk_size"],
                self.chunking["chunk_overlap"],
                max_tokens=self.max_tokens,
            )
            for document in documents
        ]
        return _Read(documents, chunks)

    def _read_known(self, item: InputFile) -> _Read:
        stored = self.known.get(str(item.path))
        return self.read(item, stored[0].sha256 if stored else None)

    def run(self, inputs: list[InputFile], gone: list[StoredDocument]) -> None:
        """Remove ``gone``, then add or replace what changed among ``inputs``."""
        for document in gone:
            self.report.chunks_removed += self.store.delete_file(document.file)
            self.report.removed.append(_file_source(document))
        self.events.start(len(inputs), "ingesting")
        # Files whose size and mtime are as stored are not read at all. Which those are is
        # guessed up front, from one listing, to know what to read ahead. A file to write is
        # looked up again when its turn comes (a database store locks it until the next
        # commit; unchanged files are not locked).
        for stored_document in self.store.documents():
            self.known.setdefault(stored_document.file, []).append(stored_document)
        plan = [(item, self._looks_unchanged(item)) for item in inputs]
        reads = prefetch.read_ahead([item for item, same in plan if not same], self._read_known)
        try:
            for item, guessed_same in plan:
                self.events.advance()
                future = None if guessed_same else next(reads)[1]
                if guessed_same and self._looks_unchanged(item):
                    _unchanged(self.store, item, self.known[str(item.path)], self.report)
                    continue
                self._sync_file(item, future)
            _flush(self.store, self.embedder, self.pending, self.report)
            self.store.save()
        finally:
            reads.close()
            self.events.finish()

    def _looks_unchanged(self, item: InputFile) -> bool:
        stored = self.known.get(str(item.path))
        return bool(stored) and _same_stat(item.path, stored or [])

    def _sync_file(self, item: InputFile, future: Any) -> None:
        """One file whose size or modification time changed, or that is new."""
        store, report = self.store, self.report
        stored = store.documents_of_file(str(item.path))
        if stored and _same_stat(item.path, stored):
            _unchanged(store, item, stored, report)
            return
        try:
            loaded = future.result() if future is not None else self.read(item)
            same_content = bool(stored) and stored[0].sha256 == loaded.documents[0].sha256
            if loaded.chunks is None and not same_content:  # changed since it was read
                loaded = self.read(item)
        except (LoaderError, OSError) as e:
            reason = e.message if isinstance(e, LoaderError) else str(e)
            report.skipped.append(SkippedFile(item.source, reason))
            self.events.warn(f"skipped {item.source}: {reason}")
            return
        documents = loaded.documents
        if same_content:
            store.touch_file(str(item.path), documents[0].mtime)
            _unchanged(store, item, stored, report)
            return
        assert loaded.chunks is not None
        for note in dict.fromkeys(n for d in documents for n in d.notes):
            report.warnings.append(SkippedFile(item.source, note))
            self.events.warn(f"{item.source}: {note}")
        root = item.root or (stored[0].root if stored else None)
        origin = item.origin or (stored[0].origin if stored else None)
        chunked = list(zip(documents, loaded.chunks))
        self.pending.append(_Pending(item, chunked, bool(stored), root, origin))
        self._commit_when_due()

    def _commit_when_due(self) -> None:
        if not self.every_file and sum(p.chunk_count for p in self.pending) < EMBED_BATCH_CHUNKS:
            return
        _flush(self.store, self.embedder, self.pending, self.report)
        self.pending = []
        elapsed = time.monotonic() - self.last_commit
        if self.every_file or (self.periodic and elapsed >= self.settings.commit_every):
            self.store.save()
            self.last_commit = time.monotonic()


def _unchanged(
    store: Store, item: InputFile, stored: list[StoredDocument], report: IngestReport
) -> None:
    if item.origin and (stored[0].origin, stored[0].root) != (item.origin, item.root):
        store.set_origin(str(item.path), item.root, item.origin)
    report.unchanged.append(item.source)


def _flush(store: Store, embedder: Embedder, pending: list[_Pending], report: IngestReport) -> None:
    """Stage the pending files in the store, embedding their chunks a batch at a time.

    Memory stays bounded by the batch, not by the files: a long file's vectors are added as
    each batch of its chunks is embedded.
    """
    queue: list[tuple[int, Chunk]] = []
    for p in pending:
        if p.replacing:
            report.chunks_removed += store.delete_file(str(p.item.path))
            report.updated.append(p.item.source)
        else:
            report.added.append(p.item.source)
        for document, chunks in p.documents:
            document_id = store.add_document(document, len(chunks), p.root, p.origin)
            queue += [(document_id, chunk) for chunk in chunks]
    for start in range(0, len(queue), EMBED_BATCH_CHUNKS):
        batch = queue[start : start + EMBED_BATCH_CHUNKS]
        vectors = embedder.embed_documents([chunk.text for _, chunk in batch])
        offset = 0
        while offset < len(batch):
            document_id = batch[offset][0]
            end = offset
            while end < len(batch) and batch[end][0] == document_id:
                end += 1
            store.add_chunks(
                document_id, [chunk for _, chunk in batch[offset:end]], vectors[offset:end]
            )
            offset = end
        report.chunks_added += len(batch)
