"""One pass that brings a store in step with input files: read ahead, skip what is unchanged,
embed the rest in batches, commit whole files."""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ragcli import loaders, prefetch
from ragcli.chunking import split_document
from ragcli.errors import LoaderError
from ragcli.models.embedding import Embedder
from ragcli.models.embedding_cache import cache_for
from ragcli.pipeline.batching import Batch, Pending
from ragcli.pipeline.inputs import InputFile
from ragcli.quality import file_report
from ragcli.records import Chunk, Document, FileReport, SkippedFile
from ragcli.store import Store, StoredDocument

if TYPE_CHECKING:
    from ragcli.pipeline.ingesting import Ingest


def file_source(document: StoredDocument) -> str:
    """How a stored document's file is shown: its source, less a .jsonl record's ``#id``."""
    if document.key != document.file:
        return document.source.rsplit("#", 1)[0]
    return document.source


def same_stat(path: Path, stored: list[StoredDocument]) -> bool:
    """Whether a file's size and modification time are those stored for it."""
    try:
        stat = path.stat()
    except OSError:  # gone or unreadable now: reading it will say so
        return False
    return all(d.size == stat.st_size and d.mtime == stat.st_mtime for d in stored)


@dataclass
class _Read:
    """One file as read ahead: its documents, and their chunks unless its content is known."""

    documents: list[Document]
    chunks: list[list[Chunk]] | None
    seconds: float = 0.0  # reading and chunking


class Sync:
    """One pass of an ingest over a store, committing whole files.

    Commits happen between files only (every ``settings.commit_every`` seconds, or after each
    file when it is 0, unless ``periodic`` is off) and at the end. Once the job's ``stop`` is
    set, the pass ends at the next file with a commit of the files done.
    """

    def __init__(
        self, job: Ingest, store: Store, embedder: Embedder, periodic: bool = True
    ) -> None:
        self.store, self.embedder = store, embedder
        self.report, self.events, self.settings = job.report, job.events, job.settings
        self.stop = job.stop
        self.cut_short = False  # asked to stop, it left files undone
        self.periodic = periodic
        self.every_file = periodic and self.settings.commit_every == 0
        self.chunking = store.manifest["chunking"]
        self.max_bytes = self.settings.max_file_mb * 2**20
        # Recorded when the collection was made: asking the embedder would load its model
        # (and import torch) before anything is known to need embedding.
        self.max_tokens = store.manifest["embedder"].get("max_tokens") or embedder.max_tokens
        self.known: dict[str, list[StoredDocument]] = {}
        home = self.settings.home
        self.batch = Batch(store, embedder, self.report, lambda: cache_for(embedder, home))
        self.last_commit = time.monotonic()
        # A database store about to wait for a file another writer holds commits the files
        # done first (holding no lock then, two writers never wait for each other).
        store.before_waiting = self.commit

    def read(self, item: InputFile, known_sha256: str | None = None) -> _Read:
        """Load and chunk one file (in the read-ahead thread: no store access here).

        A file whose content hashes to ``known_sha256`` is neither parsed nor chunked: parsing
        may mean OCR, and chunking counts tokens with the embedder's tokenizer, which loads
        the model.
        """
        started = time.perf_counter()
        if known_sha256 is not None:
            same = loaders.unchanged_file(item.path, item.source, known_sha256)
            if same is not None:
                return _Read([same], None)
        documents = loaders.load_documents(item.path, item.source, item.doc_id, self.max_bytes)
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
        return _Read(documents, chunks, time.perf_counter() - started)

    def _read_known(self, item: InputFile) -> _Read:
        stored = self.known.get(str(item.path))
        return self.read(item, stored[0].sha256 if stored else None)

    def run(self, inputs: list[InputFile], gone: list[StoredDocument]) -> None:
        """Remove ``gone``, then add or replace what changed among ``inputs``."""
        for document in gone:
            self.report.chunks_removed += self.store.delete_file(document.file)
            self.report.removed.append(file_source(document))
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
                if self.stop is not None and self.stop.is_set():
                    self.cut_short = True
                    break
                self.events.advance()
                future = None if guessed_same else next(reads)[1]
                if guessed_same and self._looks_unchanged(item):
                    self._unchanged(item, self.known[str(item.path)])
                    continue
                self._sync_file(item, future)
            self.batch.flush()
            self.store.save()
        finally:
            reads.close()
            self.events.finish()
            if self.batch.cache is not None:
                self.batch.cache.close()

    def _looks_unchanged(self, item: InputFile) -> bool:
        stored = self.known.get(str(item.path))
        return bool(stored) and same_stat(item.path, stored or [])

    def _sync_file(self, item: InputFile, future: Future[_Read] | None) -> None:
        """One file whose size or modification time changed, or that is new."""
        store, report = self.store, self.report
        stored = store.documents_of_file(str(item.path))
        if stored and same_stat(item.path, stored):
            self._unchanged(item, stored)
            return
        try:
            loaded = future.result() if future is not None else self.read(item)
            same_content = bool(stored) and stored[0].sha256 == loaded.documents[0].sha256
            if loaded.chunks is None and not same_content:  # changed since it was read
                loaded = self.read(item)
        except (LoaderError, OSError) as e:
            reason = e.message if isinstance(e, LoaderError) else str(e)
            report.skipped.append(SkippedFile(item.source, reason))
            report.files.append(FileReport(item.source, "skipped", warnings=[reason]))
            self.events.warn(f"skipped {item.source}: {reason}")
            return
        documents = loaded.documents
        if same_content:
            store.touch_file(str(item.path), documents[0].mtime)
            self._unchanged(item, stored)
            return
        assert loaded.chunks is not None
        for note in dict.fromkeys(n for d in documents for n in d.notes):
            report.warnings.append(SkippedFile(item.source, note))
            self.events.warn(f"{item.source}: {note}")
        root = item.root or (stored[0].root if stored else None)
        origin = item.origin or (stored[0].origin if stored else None)
        status = "updated" if stored else "added"
        report.files.append(
            file_report(item.source, status, documents, loaded.chunks, loaded.seconds)
        )
        chunked = list(zip(documents, loaded.chunks))
        self.batch.add(Pending(item, chunked, bool(stored), root, origin))
        self._commit_when_due()

    def _unchanged(self, item: InputFile, stored: list[StoredDocument]) -> None:
        if item.origin and (stored[0].origin, stored[0].root) != (item.origin, item.root):
            self.store.set_origin(str(item.path), item.root, item.origin)
        self.report.unchanged.append(item.source)
        self.report.files.append(FileReport(item.source, "unchanged"))

    def _commit_when_due(self) -> None:
        if not self.every_file and not self.batch.full:
            return
        self.batch.flush()
        elapsed = time.monotonic() - self.last_commit
        if self.every_file or (self.periodic and elapsed >= self.settings.commit_every):
            self.commit()

    def commit(self) -> None:
        """Stage the pending files and commit."""
        self.batch.flush()
        self.store.save()
        self.last_commit = time.monotonic()
