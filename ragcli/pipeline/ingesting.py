"""The ingest use case: new, changed and gone files brought in step; rebuilds; dry runs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ragcli.config import Settings
from ragcli.errors import NothingIngestedError, RagcliError, UsageError
from ragcli.models import embedding
from ragcli.models.bundled_generator import sha256_of
from ragcli.models.embedding import Embedder, embedder_for, embedder_name
from ragcli.pipeline.checks import check_compatible
from ragcli.pipeline.events import Events
from ragcli.pipeline.exporting import export_for_queries
from ragcli.pipeline.inputs import Found, Ignore, collect_inputs, in_shard, shard_of
from ragcli.pipeline.syncing import Sync, file_source, same_stat
from ragcli.records import IngestReport, SkippedFile
from ragcli.store import Store, StoredDocument, make_manifest
from ragcli.store.common import DEFAULT_VECTORS, vector_kind
from ragcli.store.location import Location, location_for, remember_store

DEFAULT_CHUNK_SIZE = 200
DEFAULT_CHUNK_OVERLAP = 32


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
    ignore: Sequence[str] = (),
) -> IngestReport:
    """Bring the collection in step with the files named.

    New and changed files are (re-)embedded, unchanged ones skipped, unreadable ones reported,
    and files gone from a folder ingested again removed (unless ``prune`` is off). ``rebuild``
    re-embeds everything into a new collection that replaces the old one at the end; with no
    arguments it reads again what the collection holds. ``shard`` (K, N) takes the K-th of N
    shares of the files, so N ingesters together do what one does alone. Files and folders
    matching ``ignore`` (glob patterns), besides editors' temporary files, are not collected.
    """
    events = events or Events()
    started = time.perf_counter()
    if shard is not None and rebuild:
        raise UsageError("--shard cannot be combined with --rebuild", "rebuild with one ingester")
    job = Ingest(settings, events, dry_run, rebuild, prune, shard, Ignore(ignore))
    report = job.report
    if not arguments and not report.rebuilt:
        hint = "give files, folders or glob patterns; --rebuild alone re-reads a collection"
        raise UsageError("missing PATH", hint)
    if report.rebuilt:
        job.rebuild(arguments)
    else:
        job.update(arguments)
    if report.chunks_added and not dry_run:
        export_for_queries(settings, events)
    report.seconds = time.perf_counter() - started
    return report


class Ingest:
    """One ingest: its settings and options, where the collection lives, the report it builds.

    ``update`` brings the collection in step in place, committing whole files as it goes;
    ``rebuild`` embeds everything anew into a staging collection swapped in at the end. With
    ``dry_run`` both only fill the report.

    What ``ingest --watch`` sets between syncs: ``stop`` (once set, an update commits the
    files done and ends), ``embedders`` (kept across syncs, so a model loads once) and
    ``watched_files`` (files of file and glob arguments synced before: removed when gone).
    """

    def __init__(
        self,
        settings: Settings,
        events: Events,
        dry_run: bool = False,
        rebuild: bool = False,
        prune: bool = True,
        shard: tuple[int, int] | None = None,
        ignore: Ignore | None = None,
    ) -> None:
        self.settings, self.events = settings, events
        self.prune, self.shard = prune, shard
        self.ignore = ignore or Ignore()
        self.stop: threading.Event | None = None
        self.embedders: dict[str, Embedder] = {}
        self.watched_files: set[str] = set()
        self.found = Found([], [])
        self.cut_short = False  # the update stopped (``stop``) before its last file
        self.location: Location = location_for(settings)
        self.location.recover()
        self.exists = self.location.exists()
        self.report = IngestReport(
            collection=settings.collection, dry_run=dry_run, rebuilt=rebuild and self.exists
        )
        self.empty_shard = False  # this shard holds none of the files found

    # -- in place --------------------------------------------------------------------------

    def update(self, arguments: list[str]) -> None:
        """Ingest into the collection in place, committing whole files as it goes."""
        found = self.found = self._found(arguments)
        if self.exists:
            check_compatible(self.location.read_manifest(), self.settings)
        if self.report.dry_run:
            self._plan_update(found)
            return
        may_prune = self.exists and self.prune and bool(found.folders or self.watched_files)
        if self.empty_shard and not may_prune:
            return
        if not found.inputs and not may_prune:
            raise NothingIngestedError(
                "nothing to ingest: no readable file of a supported type was given",
                "supported: .txt .md .rst .html .htm .pdf .jsonl; see the warnings above",
            )
        self._sync_in_place(found)
        report = self.report
        done = report.added or report.updated or report.unchanged or report.removed
        if not done and not self.empty_shard:
            raise _nothing_ingested(report)

    def _found(self, arguments: list[str]) -> Found:
        """The files the arguments name, less those of other shards."""
        found = collect_inputs(arguments, self.report.skipped, self.events, self.ignore)
        shard = self.shard
        if shard is not None:
            everything = len(found.inputs)
            found.inputs = [item for item in found.inputs if in_shard(item, shard)]
            # A small corpus can leave a shard nothing to do; the other shards have it.
            self.empty_shard = everything > 0 and not found.inputs
            if self.empty_shard:
                self.events.status(
                    f"shard {shard[0]}/{shard[1]} holds none of the {everything} file(s)"
                )
        return found

    def _plan_update(self, found: Found) -> None:
        store = self.location.open(load_vectors=False) if self.exists else None
        try:
            self._plan(store, found)
        finally:
            if store:
                store.close()

    def _sync_in_place(self, found: Found) -> None:
        """Remove what is gone and sync the files found, into the collection as it is."""
        store, embedder = self._open_for_writing()
        try:
            gone = self._prunable(store, found) if self.prune else []
            sync = Sync(self, store, embedder)
            sync.run(found.inputs, gone)
            self.cut_short = sync.cut_short
        except KeyboardInterrupt:
            store.rollback()
            committed = len(store.documents())
            raise IngestInterrupted(
                f"interrupted; collection {self.settings.collection!r} keeps the {committed} "
                "document(s) committed before",
                "run the same ingest again to continue where it stopped",
            ) from None
        finally:
            empty = store.generation == 0
            store.close()
            if not self.exists and empty:
                self.location.discard_new(store)

    def _open_for_writing(self) -> tuple[Store, Embedder]:
        """The collection opened (or made) for writing, with its embedder."""
        if self.exists:
            store = self.location.open(writable=True)
            self.location.discard_staging()  # a rebuild that died; we hold the lock it held
            key = json.dumps(store.manifest["embedder"], sort_keys=True)
            embedder = self.embedders.get(key) or embedder_for(store.manifest, self.settings)
        else:
            embedder, manifest = self._new_collection(None)
            store = self.location.create(manifest)
            key = json.dumps(store.manifest["embedder"], sort_keys=True)
        self.embedders[key] = embedder
        remember_store(self.settings)
        return store, embedder

    # -- rebuild ---------------------------------------------------------------------------

    def rebuild(self, arguments: list[str]) -> None:
        """Embed everything anew into a staging collection, then swap it in for the collection."""
        old = self.location.open_for_rebuild()  # keeps other writers out throughout
        try:
            self._rebuild_from(old, arguments)
        except KeyboardInterrupt:
            raise IngestInterrupted(
                f"interrupted; collection {self.settings.collection!r} is as it was before "
                "the rebuild",
                "run the rebuild again",
            ) from None
        finally:
            old.close()

    def _rebuild_from(self, old: Store, arguments: list[str]) -> None:
        location, report = self.location, self.report
        location.discard_staging()
        found = collect_inputs(
            arguments or old.ingest_arguments(), report.skipped, self.events, self.ignore
        )
        kept = {str(item.path) for item in found.inputs}
        gone = [d for d in _by_file(old.documents()) if d.file not in kept]
        if report.dry_run:
            report.added = [item.source for item in found.inputs]
            report.removed = [file_source(d) for d in gone]
            return
        if not found.inputs:
            raise _nothing_ingested(report)
        embedder, manifest = self._new_collection(old.manifest)
        new = location.create_staging(manifest, old.generation)
        try:
            Sync(self, new, embedder, periodic=False).run(found.inputs, [])
            if not report.added:
                raise _nothing_ingested(report)
        except BaseException:
            location.abandon_staging(new)
            raise
        report.removed = [file_source(d) for d in gone]
        report.chunks_removed = old.counts()["chunks"]
        location.publish_staging(new, old)

    def _new_collection(self, base: dict[str, Any] | None) -> tuple[Embedder, dict]:
        """The embedder and manifest of a collection made now: settings first, then ``base``'s."""
        settings = self.settings
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
        vectors = settings.vectors or (vector_kind(base) if base else DEFAULT_VECTORS)
        manifest = make_manifest(
            settings.collection,
            embedder.name,
            embedder.dimension,
            embedder.max_tokens,
            chunking,
            vectors,
        )
        manifest["embedder"].update(embedder.prompt_record())
        return embedder, manifest

    # -- what would change, what is gone -----------------------------------------------------

    def _plan(self, store: Store | None, found: Found) -> None:
        """Classify inputs as new, changed or unchanged, and list what pruning would remove.

        No model is loaded. A file whose size or mtime changed is hashed, so a file that was
        only touched shows as unchanged, as the ingest itself would find.
        """
        report = self.report
        for item in found.inputs:
            stored = store.documents_of_file(str(item.path)) if store else []
            if not stored:
                report.added.append(item.source)
                continue
            try:
                same = same_stat(item.path, stored) or sha256_of([item.path]) == stored[0].sha256
            except OSError as e:
                report.skipped.append(SkippedFile(item.source, str(e)))
                continue
            (report.unchanged if same else report.updated).append(item.source)
        if store and self.prune:
            report.removed = [file_source(d) for d in self._prunable(store, found)]

    def _prunable(self, store: Store, found: Found) -> list[StoredDocument]:
        """Files ingested from one of these folders that are no longer in it (one per file),
        and watched files that are gone.

        With a shard, only files of that shard: each gone file is removed by exactly one
        ingester.
        """
        shard = self.shard
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
        for file in sorted(self.watched_files - present - gone.keys()):
            stored = store.documents_of_file(file)
            if stored and not Path(file).is_file():
                gone[file] = stored[0]
        return list(gone.values())


def _nothing_ingested(report: IngestReport) -> NothingIngestedError:
    return NothingIngestedError(
        f"nothing ingested: all {len(report.skipped)} input(s) were skipped",
        "see the warnings above",
    )


def _by_file(documents: Iterable[StoredDocument]) -> list[StoredDocument]:
    """One document per file (a .jsonl corpus holds many)."""
    return list({d.file: d for d in reversed(list(documents))}.values())[::-1]


def _disappeared(document: StoredDocument) -> bool:
    """Whether the file a folder ingest found at ``origin`` is no longer there."""
    try:
        now = Path(document.origin or "").resolve(strict=True)
    except PermissionError:
        return False  # cannot look: keep it
    except (OSError, RuntimeError):
        return True  # gone, a broken link, or a link loop
    return now != Path(document.file) or not now.is_file()
