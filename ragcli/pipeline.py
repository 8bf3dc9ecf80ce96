"""Use cases that wire the steps together: ingest(), search(), ask()."""

from __future__ import annotations

import dataclasses
import errno
import glob
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ragcli import embedding, generation
from ragcli.backends import Backend, CollectionStore, backend_for, opened, remember_store
from ragcli.chunking import split_document
from ragcli.config import Settings
from ragcli.embedding import Embedder, collection_prompts, embedder_for, embedder_name
from ragcli.errors import (
    CollectionNotFoundError,
    IncompatibleCollectionError,
    LoaderError,
    NothingIngestedError,
    RagcliError,
    UsageError,
)
from ragcli.evaluation import (
    Dataset,
    Run,
    documents_from_chunks,
    load_dataset,
    read_qrels,
    read_queries,
    score_run,
    write_trec_run,
)
from ragcli.generation import (
    BUNDLED_GENERATOR,
    ChatModel,
    engine_label,
    sha256_of,
)
from ragcli.grounding import MarkerFilter, check_answer
from ragcli.loaders import is_supported, load_documents
from ragcli.models import (
    Answer,
    Chunk,
    Document,
    Hit,
    IngestReport,
    SearchResult,
    SkippedFile,
)
from ragcli.onnxembed import (
    ExportError,
    export_embedder,
    failed_export,
    find_export,
    onnx_enabled,
    onnx_query_embedder,
    record_failed_export,
)
from ragcli.prefetch import read_ahead
from ragcli.prompting import pack_passages
from ragcli.retrieval import DEFAULT_MODE, Fusion, Reranker, Retrieval, candidates, retrieve
from ragcli.store import StoredDocument, make_manifest

DEFAULT_CHUNK_SIZE = 200
DEFAULT_CHUNK_OVERLAP = 32
EMBED_BATCH_CHUNKS = 512  # chunks embedded together before they are added to the index
# ask abstains without generating when no passage is this close (cosine) to the question.
# Calibrated on the sample corpus and Cranfield (README, "Answers you can check").
MIN_SCORE = 0.35


class Events:
    """What the pipeline tells its caller while it works; the default says nothing."""

    def status(self, message: str) -> None:
        """A one-line note on what is happening (model preparation, commits)."""

    def warn(self, message: str) -> None:
        """Something went wrong with one input; the work goes on."""

    def start(self, total: int, description: str) -> None:
        """A counted task begins."""

    def advance(self, amount: int = 1) -> None:
        """Progress on the current counted task."""

    def finish(self) -> None:
        """The counted task is over."""


class IngestInterrupted(RagcliError):
    """Ctrl-C during ingest: what was committed before stays."""

    exit_code = 130


# -- ingest ------------------------------------------------------------------------------------


@dataclass
class _Input:
    path: Path  # absolute, resolved
    source: str  # as cited
    doc_id: str  # relative to the folder it was found in, or the file name
    root: str | None = None  # the folder argument it was found in, resolved
    origin: str | None = None  # root + its path under it (symlinks below root not resolved)


@dataclass
class Found:
    """What some ingest arguments name: readable candidates, and the folders walked."""

    inputs: list[_Input]
    folders: list[str]  # resolved folder arguments: pruning looks under these only


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _walk(root: Path, skip: Callable[[str, str], None]) -> Iterator[Path]:
    def unreadable(error: OSError) -> None:
        reason = "permission denied" if isinstance(error, PermissionError) else error.strerror
        skip(_display(Path(error.filename).absolute()), f"cannot list folder: {reason}")

    for directory, dirs, files in os.walk(root, onerror=unreadable, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(directory) / name


def _link_problem(path: Path) -> str | None:
    """Why a symbolic link leads nowhere, or None when it is no link or a working one."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as e:
        return "symbolic link loop" if e.errno == errno.ELOOP else "broken symbolic link"
    return None


def collect_inputs(arguments: Iterable[str], skipped: list[SkippedFile], events: Events) -> Found:
    """Expand files, folders (recursively) and globs into unique readable candidates."""
    found: dict[Path, _Input] = {}
    folders: list[str] = []

    def skip(path: str, reason: str) -> None:
        skipped.append(SkippedFile(path, reason))
        events.warn(f"skipped {path}: {reason}")

    for argument in arguments:
        candidates: list[Path]
        given = Path(argument).expanduser()
        root: Path | None = None
        if not given.exists() and not given.is_symlink() and glob.has_magic(argument):
            candidates = [Path(p) for p in sorted(glob.glob(str(given), recursive=True))]
            if not candidates:
                skip(argument, "no file matches this pattern")
        elif given.is_dir():
            root = given.resolve()
            folders.append(str(root))
            candidates = list(_walk(given, skip))
        else:
            candidates = [given]
        for candidate in candidates:
            shown = _display(candidate.absolute())
            if candidate.is_dir():
                candidates.extend(_walk(candidate, skip))
                continue
            problem = _link_problem(candidate)
            if problem:
                skip(shown, problem)
                continue
            if not candidate.exists():
                skip(shown, "no such file")
                continue
            if not is_supported(candidate):
                skip(shown, f"unsupported file type {candidate.suffix or '(no extension)'!r}")
                continue
            try:
                resolved = candidate.resolve(strict=True)
            except (OSError, RuntimeError) as e:
                skip(shown, f"cannot resolve path ({e})")
                continue
            relative = candidate.relative_to(given) if root else None
            item = found.setdefault(
                resolved,
                _Input(resolved, shown, relative.as_posix() if relative else candidate.name),
            )
            if root and relative and item.origin is None:
                item.root, item.origin = str(root), str(root / relative)
    return Found(list(found.values()), folders)


def _check_embedder(manifest: dict, settings: Settings) -> None:
    name = manifest["embedder"]["name"]
    if settings.embed_model and embedder_name(settings.embed_model) != name:
        raise IncompatibleCollectionError(
            f"collection {settings.collection!r} was built with embedder {name!r}, "
            f"not {embedder_name(settings.embed_model)!r}",
            "drop --embed-model to use the collection's embedder, pick another "
            "collection with -c, or re-embed everything with ingest --rebuild",
        )
    collection_prompts(manifest, settings)  # refuses prompts other than the recorded ones


def _check_compatible(manifest: dict, settings: Settings) -> None:
    _check_embedder(manifest, settings)
    chunking = manifest.get("chunking", {})
    for key, value in (
        ("chunk_size", settings.chunk_size),
        ("chunk_overlap", settings.chunk_overlap),
    ):
        if value is not None and chunking.get(key) != value:
            raise IncompatibleCollectionError(
                f"collection {settings.collection!r} uses {key.replace('_', '-')} "
                f"{chunking.get(key)}, not {value}",
                "leave the option out to keep the collection's setting, ingest into "
                "another collection with -c, or re-chunk everything with ingest --rebuild",
            )


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
    backend = backend_for(settings)
    backend.recover()
    exists = backend.exists()
    report = IngestReport(
        collection=settings.collection, dry_run=dry_run, rebuilt=rebuild and exists
    )
    if not arguments and not report.rebuilt:
        hint = "give files, folders or glob patterns; --rebuild alone re-reads a collection"
        raise UsageError("missing PATH", hint)
    if report.rebuilt:
        _rebuild(settings, backend, arguments, events, report)
    else:
        _update(settings, backend, arguments, events, report, exists, prune, shard)
    if report.chunks_added and not dry_run:
        _export_for_queries(settings, events)
    report.seconds = time.perf_counter() - started
    return report


def _export_for_queries(settings: Settings, events: Events) -> None:
    """Export the collection's embedder to ONNX for questions, once per embedder.

    Runs after an ingest that embedded chunks, when torch is imported anyway. An export that
    fails, or whose vectors differ from the model's, is not kept and never fails the ingest:
    questions are then embedded with the model itself. A failure is remembered, and not
    tried again until the model's files or the libraries change (``models prepare`` always
    tries).
    """
    if not onnx_enabled(settings):
        return
    name = None
    try:
        backend = backend_for(settings)
        manifest = backend.read_manifest()
        name = manifest["embedder"]["name"]
        if find_export(settings.model_cache_dir, name) is not None:
            return
        if failed_export(settings.model_cache_dir, name) is not None:
            return
        with opened(backend, load_vectors=False) as store:
            texts = store.sample_texts(8)
        # Checked against the float32 model: the reference, whatever precision chunks used.
        embedder = embedder_for(manifest, settings, precision="float32")
        events.status(f"exporting the embedder to ONNX for fast questions ({name})")
        export = export_embedder(embedder, settings.model_cache_dir, texts)
        events.status(
            f"exported in {export.seconds:.1f} s (least cosine to the model "
            f"{export.min_cosine:.6f}): {export.folder}"
        )
    except Exception as e:
        reason = str(e) if isinstance(e, ExportError) else f"{type(e).__name__}: {e}"
        if name is not None and not isinstance(e, OSError):  # a full disk may not stay full
            record_failed_export(settings.model_cache_dir, name, reason)
        if os.environ.get("RAGCLI_DEBUG"):
            events.status(f"embedder not exported to ONNX, questions use torch: {reason}")


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
    backend: Backend,
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
        found.inputs = [item for item in found.inputs if _in_shard(item, shard)]
        # A small corpus can leave a shard nothing to do; the other shards have it.
        empty_shard = everything > 0 and not found.inputs
        if empty_shard:
            events.status(f"shard {shard[0]}/{shard[1]} holds none of the {everything} file(s)")
    if exists:
        _check_compatible(backend.read_manifest(), settings)
    if report.dry_run:
        store = backend.open(load_vectors=False) if exists else None
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
        store = backend.open(writable=True)
        backend.discard_staging()  # a rebuild that died; we hold the lock it held
        embedder = embedder_for(store.manifest, settings)
    else:
        embedder, manifest = _new_collection(settings, None)
        store = backend.create(manifest)
    remember_store(settings)
    try:
        gone = _prunable(store, found, shard) if prune else []
        _ingest_into(store, embedder, found.inputs, report, events, settings, gone)
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
            backend.discard_new(store)
    done = report.added or report.updated or report.unchanged or report.removed
    if not done and not empty_shard:
        raise _nothing_ingested(report)


def _rebuild(
    settings: Settings,
    backend: Backend,
    arguments: list[str],
    events: Events,
    report: IngestReport,
) -> None:
    """Embed everything anew into a staging collection, then swap it in for the collection."""
    old = backend.open_for_rebuild()  # keeps other writers out throughout
    try:
        backend.discard_staging()
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
        new = backend.create_staging(manifest, old.generation)
        try:
            _ingest_into(new, embedder, found.inputs, report, events, settings, [], periodic=False)
            if not report.added:
                raise _nothing_ingested(report)
        except BaseException:
            backend.abandon_staging(new)
            raise
        report.removed = [_file_source(d) for d in gone]
        report.chunks_removed = old.counts()["chunks"]
        backend.publish_staging(new, old)
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
    if document.path != document.file:
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


def shard_of(root: str | None, origin: str | None, file: str, shards: int) -> int:
    """Which of ``shards`` ingesters (1-based) takes a file: by a hash of its path under the
    folder it was found in (its name for a file argument), the same on every machine."""
    key = os.path.relpath(origin, root) if root and origin else os.path.basename(file)
    digest = hashlib.sha256(PurePosixPath(key).as_posix().encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards + 1


def _in_shard(item: _Input, shard: tuple[int, int]) -> bool:
    return shard_of(item.root, item.origin, str(item.path), shard[1]) == shard[0]


def _prunable(
    store: CollectionStore, found: Found, shard: tuple[int, int] | None = None
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
    store: CollectionStore | None,
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

    item: _Input
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


def _ingest_into(
    store: CollectionStore,
    embedder: Embedder,
    inputs: list[_Input],
    report: IngestReport,
    events: Events,
    settings: Settings,
    gone: list[StoredDocument],
    periodic: bool = True,
) -> None:
    """Remove ``gone``, then add or replace what changed among ``inputs``.

    Commits happen between files only (every ``settings.commit_every`` seconds, or after each
    file when it is 0, unless ``periodic`` is off) and at the end, so each commit holds whole
    files.
    """
    chunking = store.manifest["chunking"]
    max_bytes = settings.max_file_mb * 2**20
    # Recorded when the collection was made: asking the embedder would load its model (and
    # import torch) before anything is known to need embedding.
    max_tokens = store.manifest["embedder"].get("max_tokens") or embedder.max_tokens
    every_file = periodic and settings.commit_every == 0
    for document in gone:
        report.chunks_removed += store.delete_file(document.file)
        report.removed.append(_file_source(document))

    def read(item: _Input, known_sha256: str | None = None) -> _Read:
        """Load and chunk one file (in the read-ahead thread: no store access here).

        A file whose content hashes to ``known_sha256`` is not chunked: chunking counts
        tokens with the embedder's tokenizer, which loads the model.
        """
        documents = load_documents(item.path, item.source, item.doc_id, max_bytes)
        if known_sha256 is not None and documents and documents[0].sha256 == known_sha256:
            return _Read(documents, None)
        chunks = [
            split_document(
                document,
                embedder.count_tokens,
                chunking["chunk_size"],
                chunking["chunk_overlap"],
                max_tokens=max_tokens,
            )
            for document in documents
        ]
        return _Read(documents, chunks)

    def stored_sha256(item: _Input) -> str | None:
        stored = known.get(str(item.path))
        return stored[0].sha256 if stored else None

    pending: list[_Pending] = []
    last_commit = time.monotonic()
    events.start(len(inputs), "ingesting")
    # Files whose size and mtime are as stored are not read at all. Which those are is
    # guessed up front, from one listing, to know what to read ahead. A file to write is
    # looked up again when its turn comes (a database store locks it until the next commit;
    # unchanged files are not locked).
    known: dict[str, list[StoredDocument]] = {}
    for stored_document in store.documents():
        known.setdefault(stored_document.file, []).append(stored_document)
    plan = [
        (item, bool(known.get(str(item.path))) and _same_stat(item.path, known[str(item.path)]))
        for item in inputs
    ]
    reads = read_ahead(
        [item for item, same in plan if not same], lambda item: read(item, stored_sha256(item))
    )
    try:
        for item, guessed_same in plan:
            events.advance()
            future = None if guessed_same else next(reads)[1]
            if guessed_same and _same_stat(item.path, known[str(item.path)]):
                _unchanged(store, item, known[str(item.path)], report)
                continue
            stored = store.documents_of_file(str(item.path))
            if stored and _same_stat(item.path, stored):
                _unchanged(store, item, stored, report)
                continue
            try:
                loaded = future.result() if future is not None else read(item)
                same_content = bool(stored) and stored[0].sha256 == loaded.documents[0].sha256
                if loaded.chunks is None and not same_content:  # changed since it was read
                    loaded = read(item)
            except LoaderError as e:
                report.skipped.append(SkippedFile(item.source, e.message))
                events.warn(f"skipped {item.source}: {e.message}")
                continue
            except OSError as e:
                report.skipped.append(SkippedFile(item.source, str(e)))
                events.warn(f"skipped {item.source}: {e}")
                continue
            documents = loaded.documents
            if same_content:
                store.touch_file(str(item.path), documents[0].mtime)
                _unchanged(store, item, stored, report)
                continue
            assert loaded.chunks is not None
            chunked = list(zip(documents, loaded.chunks))
            for note in dict.fromkeys(n for d in documents for n in d.notes):
                report.warnings.append(SkippedFile(item.source, note))
                events.warn(f"{item.source}: {note}")
            root = item.root or (stored[0].root if stored else None)
            origin = item.origin or (stored[0].origin if stored else None)
            pending.append(_Pending(item, chunked, bool(stored), root, origin))
            if every_file or sum(p.chunk_count for p in pending) >= EMBED_BATCH_CHUNKS:
                _flush(store, embedder, pending, report)
                pending = []
                elapsed = time.monotonic() - last_commit
                if every_file or (periodic and elapsed >= settings.commit_every):
                    store.save()
                    last_commit = time.monotonic()
        _flush(store, embedder, pending, report)
        store.save()
    finally:
        reads.close()
        events.finish()


def _unchanged(
    store: CollectionStore, item: _Input, stored: list[StoredDocument], report: IngestReport
) -> None:
    if item.origin and (stored[0].origin, stored[0].root) != (item.origin, item.root):
        store.set_origin(str(item.path), item.root, item.origin)
    report.unchanged.append(item.source)


def _flush(
    store: CollectionStore, embedder: Embedder, pending: list[_Pending], report: IngestReport
) -> None:
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


# -- search and ask ----------------------------------------------------------------------------


def _open_for_reading(settings: Settings) -> tuple[CollectionStore, Embedder]:
    backend = backend_for(settings)
    store = backend.open()
    manifest = store.manifest
    try:
        _check_embedder(manifest, settings)
    except BaseException:
        store.close()
        raise
    if store.chunk_count == 0:
        store.close()
        raise CollectionNotFoundError(
            f"collection {settings.collection!r} is empty", "run `ragcli ingest PATH` first"
        )
    name, prompts = manifest["embedder"]["name"], collection_prompts(manifest, settings)
    fast = onnx_query_embedder(settings, name, *prompts)
    return store, fast or embedder_for(manifest, settings)


def _retrieval(settings: Settings, source_glob: str | None, explain: bool) -> Retrieval:
    return Retrieval(
        mode=settings.mode or DEFAULT_MODE,
        source_glob=source_glob,
        max_per_doc=settings.max_per_doc,
        explain=explain,
        reranker=Reranker(settings.rerank) if settings.rerank else None,
    )


class Searcher:
    """An open collection with its embedder (and reranker) loaded once for many questions."""

    def __init__(
        self,
        settings: Settings,
        source_glob: str | None = None,
        explain: bool = False,
        fusion: Fusion | None = None,
    ) -> None:
        self.settings = settings
        self.store, self.embedder = _open_for_reading(settings)
        self.how = _retrieval(settings, source_glob, explain)
        if fusion is not None:
            self.how.fusion = fusion
        started = time.perf_counter()
        try:
            self.embedder.load()  # outside the retrieval timing
            if self.how.reranker is not None:
                self.how.reranker.model  # noqa: B018
        except BaseException:
            self.store.close()
            raise
        self.load_seconds = time.perf_counter() - started

    def search(self, question: str, top_k: int | None = None) -> SearchResult:
        started = time.perf_counter()
        hits = retrieve(self.store, self.embedder, question, top_k or self.settings.top_k, self.how)
        return SearchResult(
            question=question,
            collection=self.settings.collection,
            embedder=self.embedder.name,
            hits=hits,
            mode=self.how.mode,
            timings={
                "embedder_load_s": self.load_seconds,
                "retrieve_s": time.perf_counter() - started,
            },
        )

    def evidence(self, question: str, hits: list[Hit]) -> float:
        """The best cosine similarity between the question and a passage found for it."""
        if not hits:
            return 0.0
        query = self.embedder.embed_queries([question])[0]
        return float((self.store.vectors([h.chunk_id for h in hits]) @ query).max())

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def search(
    settings: Settings,
    question: str,
    top_k: int | None = None,
    source_glob: str | None = None,
    explain: bool = False,
) -> SearchResult:
    """The collection's passages that best match the question."""
    with Searcher(settings, source_glob, explain) as searcher:
        return searcher.search(question, top_k)


def search_batch(
    settings: Settings,
    questions: Iterable[tuple[str, str]],
    top_k: int | None = None,
    source_glob: str | None = None,
    explain: bool = False,
) -> Iterator[tuple[str, SearchResult]]:
    """Answer many (id, question) pairs with one model load, yielding results as they come."""
    with Searcher(settings, source_glob, explain) as searcher:
        for qid, question in questions:
            yield qid, searcher.search(question, top_k)


def ask(
    settings: Settings,
    question: str,
    top_k: int | None = None,
    events: Events | None = None,
    on_token: Callable[[str], None] | None = None,
    source_glob: str | None = None,
    abstain: bool = True,
    generator: ChatModel | None = None,
    searcher: Searcher | None = None,
) -> Answer:
    """Retrieve passages, answer from them with the LLM, and check the answer against them.

    Abstains without calling the LLM when retrieval evidence is weak (unless ``abstain`` is
    False). Pass a loaded ``generator`` and an open ``searcher`` to reuse them across questions.
    """
    events = events or Events()
    if searcher is None:
        with Searcher(settings, source_glob) as own:
            found = own.search(question, top_k)
            evidence = own.evidence(question, found.hits)
    else:
        found = searcher.search(question, top_k)
        evidence = searcher.evidence(question, found.hits)
    min_score = settings.min_score if settings.min_score is not None else MIN_SCORE
    answer = Answer(
        question=question,
        text="",
        collection=settings.collection,
        embedder=found.embedder,
        generator=generator.name if generator else (settings.llm or BUNDLED_GENERATOR),
        passages=found.hits,
        citations=[],
        evidence=evidence,
        timings=dict(found.timings),
    )
    if abstain and evidence < min_score:
        answer.abstained, answer.abstain_reason = True, "weak retrieval"
        return answer
    if generator is None:
        generator = generation.open_generator(
            settings.llm, settings.model_cache_dir, events.status, settings.backend, events.warn
        )
    generator.load()
    answer.generator = generator.name
    answer.engine = engine_label(generator)
    budget = generator.context_window - settings.max_tokens
    packing = pack_passages(question, found.hits, generator.prompt_tokens, budget)
    if not packing.passages:
        raise RagcliError(
            f"no passage fits the generator's context window ({generator.context_window} "
            f"tokens, {settings.max_tokens} of them kept for the answer)",
            "lower --max-tokens, or use a generator with a longer context",
        )
    started = time.perf_counter()
    first_token: float | None = None
    pieces: list[str] = []
    stream = generator.stream(
        packing.messages, settings.max_tokens, settings.temperature, settings.seed
    )
    shown = MarkerFilter(len(packing.passages))
    for piece in stream:
        if first_token is None:
            first_token = time.perf_counter() - started
        pieces.append(piece)
        if on_token and (visible := shown.feed(piece)):
            on_token(visible)
    if on_token and (rest := shown.flush()):
        on_token(rest)
    generate_s = time.perf_counter() - started
    check = check_answer("".join(pieces), packing.passages, question)
    tokens = generator.last_token_count
    decode_s = generate_s - (first_token or 0.0)
    answer.text = check.text
    answer.passages = packing.passages
    answer.dropped = packing.dropped
    answer.citations = check.citations
    answer.unknown_markers = check.unknown_markers
    answer.sentences = [s.to_dict() for s in check.sentences]
    if check.declined:
        answer.abstained, answer.abstain_reason = True, "model declined"
    elif not check.supported:
        answer.abstained, answer.abstain_reason = True, "unsupported"
    answer.tokens = tokens
    answer.timings.update(
        {
            "generator_load_s": generator.load_seconds,
            "prompt_tokens": float(generator.last_prompt_tokens),
            "first_token_s": first_token or 0.0,
            "generate_s": generate_s,
            "decode_tokens_per_s": (tokens - 1) / decode_s if tokens > 1 and decode_s > 0 else 0.0,
        }
    )
    return answer


def ask_batch(
    settings: Settings,
    questions: Iterable[tuple[str, str]],
    top_k: int | None = None,
    events: Events | None = None,
    source_glob: str | None = None,
    abstain: bool = True,
) -> Iterator[tuple[str, Answer]]:
    """Answer many (id, question) pairs with the models loaded once, yielding as they come."""
    events = events or Events()
    generator = generation.open_generator(
        settings.llm, settings.model_cache_dir, events.status, settings.backend, events.warn
    )
    with Searcher(settings, source_glob) as searcher:
        for qid, question in questions:
            answer = ask(
                settings,
                question,
                top_k,
                events,
                source_glob=source_glob,
                abstain=abstain,
                generator=generator,
                searcher=searcher,
            )
            yield qid, answer


# -- evaluate ----------------------------------------------------------------------------------

EVAL_POOL = 300  # chunks fetched per query, enough for 100 distinct documents


@dataclass
class EvalReport:
    """Retrieval quality of one mode on one set of judged queries."""

    collection: str
    mode: str
    queries: int
    metrics: dict[str, float]
    seconds: float
    dataset: str | None = None
    run_file: str | None = None
    ingest: IngestReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "collection": self.collection,
            "mode": self.mode,
            "queries": self.queries,
            "metrics": {name: round(value, 4) for name, value in self.metrics.items()},
            "run_file": self.run_file,
            "seconds": round(self.seconds, 3),
        }


def _dataset_collection(settings: Settings, dataset: Dataset) -> str:
    """A collection name bound to the corpus content and the settings that shape the index."""
    digest = hashlib.sha256()
    with open(dataset.corpus, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    digest.update(
        f"{embedder_name(settings.embed_model)}:{settings.chunk_size}:{settings.chunk_overlap}".encode()
    )
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset.root.resolve().name).strip("-.") or "dataset"
    return f"eval-{slug[:40]}-{digest.hexdigest()[:10]}"


def _judged_id(doc_id: str, judged_ids: set[str]) -> str:
    """Match a collection's document id to the ids the qrels use (path, name or stem)."""
    if doc_id in judged_ids:
        return doc_id
    path = PurePosixPath(doc_id)
    for candidate in (path.name, path.stem):
        if candidate in judged_ids:
            return candidate
    return path.stem


def evaluate(
    settings: Settings,
    dataset_dir: Path | None = None,
    queries_file: Path | None = None,
    qrels_file: Path | None = None,
    save_run: Path | None = None,
    events: Events | None = None,
    fusion: Fusion | None = None,
) -> EvalReport:
    """Score retrieval on judged queries: a BEIR folder, or a collection plus queries and qrels."""
    events = events or Events()
    started = time.perf_counter()
    ingest_report = None
    if dataset_dir is not None:
        dataset = load_dataset(dataset_dir)
        settings = dataclasses.replace(settings, collection=_dataset_collection(settings, dataset))
        events.status(f"indexing {dataset.corpus} into collection '{settings.collection}'")
        ingest_report = ingest(settings, [str(dataset.corpus)], events)
        queries, qrels = dataset.queries, dataset.qrels
    else:
        if queries_file is None or qrels_file is None:
            raise UsageError(
                "eval needs DATASET_DIR, or --queries and --qrels for an existing collection"
            )
        queries, qrels = read_queries(queries_file), read_qrels(qrels_file)
    judged = {qid: q for qid, q in queries.items() if qid in qrels}
    if not judged:
        raise UsageError("no query has relevance judgments", "check that the query ids match")
    judged_ids = {doc for docs in qrels.values() for doc in docs}
    run: Run = {}
    with Searcher(settings, fusion=fusion) as searcher:
        events.start(len(judged), f"evaluating {searcher.how.mode}")
        try:
            for qid, question in judged.items():
                ranked = candidates(
                    searcher.store,
                    searcher.embedder,
                    question,
                    searcher.how.mode,
                    EVAL_POOL,
                    fusion=searcher.how.fusion,
                )
                hits = searcher.store.hits([(c.chunk_id, c.score) for c in ranked])
                run[qid] = documents_from_chunks(
                    ((_judged_id(h.doc_id, judged_ids), h.score) for h in hits), 100
                )
                events.advance()
        finally:
            events.finish()
        mode = searcher.how.mode
    if save_run is not None:
        write_trec_run(run, save_run, f"ragcli-{mode}")
    scores = score_run(run, qrels)
    return EvalReport(
        collection=settings.collection,
        mode=mode,
        queries=len(judged),
        metrics=scores.means,
        seconds=time.perf_counter() - started,
        dataset=str(dataset_dir) if dataset_dir else None,
        run_file=str(save_run) if save_run else None,
        ingest=ingest_report,
    )
