"""Use cases that wire the steps together: ingest(), search(), ask()."""

from __future__ import annotations

import glob
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ragcli.chunking import split_document
from ragcli.config import Settings
from ragcli.embedding import Embedder, embedder_name
from ragcli.errors import (
    CollectionNotFoundError,
    IncompatibleCollectionError,
    LoaderError,
    NothingIngestedError,
    RagcliError,
)
from ragcli.generation import Generator
from ragcli.loaders import is_supported, load_document
from ragcli.models import Answer, Chunk, Document, IngestReport, SearchResult, SkippedFile
from ragcli.prompting import build_messages, find_citations
from ragcli.retrieval import retrieve
from ragcli.store import FaissStore, make_manifest, read_manifest

DEFAULT_CHUNK_SIZE = 200
DEFAULT_CHUNK_OVERLAP = 32
EMBED_BATCH_CHUNKS = 512  # chunks embedded together before they are added to the index
COMMIT_EVERY_SECONDS = 60.0


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


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _walk(root: Path) -> Iterator[Path]:
    for directory, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(directory) / name


def collect_inputs(
    arguments: Iterable[str], skipped: list[SkippedFile], events: Events
) -> list[_Input]:
    """Expand files, folders (recursively) and globs into unique readable candidates."""
    found: dict[Path, _Input] = {}

    def skip(path: str, reason: str) -> None:
        skipped.append(SkippedFile(path, reason))
        events.warn(f"skipped {path}: {reason}")

    for argument in arguments:
        candidates: list[Path]
        given = Path(argument).expanduser()
        if not given.exists() and not given.is_symlink() and glob.has_magic(argument):
            candidates = [Path(p) for p in sorted(glob.glob(str(given), recursive=True))]
            if not candidates:
                skip(argument, "no file matches this pattern")
        elif given.is_dir():
            candidates = list(_walk(given))
        else:
            candidates = [given]
        for candidate in candidates:
            shown = _display(candidate.absolute())
            if candidate.is_dir():
                candidates.extend(_walk(candidate))
                continue
            if candidate.is_symlink() and not candidate.exists():
                skip(shown, "broken symbolic link")
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
            found.setdefault(resolved, _Input(resolved, shown))
    return list(found.values())


def _check_embedder(manifest: dict, settings: Settings) -> None:
    name = manifest["embedder"]["name"]
    if settings.embed_model and embedder_name(settings.embed_model) != name:
        raise IncompatibleCollectionError(
            f"collection {settings.collection!r} was built with embedder {name!r}, "
            f"not {embedder_name(settings.embed_model)!r}",
            "drop --embed-model to use the collection's embedder, or pick another "
            "collection with -c",
        )


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
                "leave the option out to keep the collection's setting, or ingest into "
                "another collection with -c",
            )


def ingest(
    settings: Settings, arguments: list[str], events: Events | None = None, dry_run: bool = False
) -> IngestReport:
    """Add new and changed files to the collection, skipping unchanged and unreadable ones."""
    events = events or Events()
    started = time.perf_counter()
    report = IngestReport(collection=settings.collection, dry_run=dry_run)
    inputs = collect_inputs(arguments, report.skipped, events)
    directory = settings.collection_dir
    exists = (directory / "manifest.json").exists()
    if exists:
        _check_compatible(read_manifest(directory), settings)
    if dry_run:
        _plan(directory if exists else None, inputs, report)
        report.seconds = time.perf_counter() - started
        return report
    if not inputs:
        raise NothingIngestedError(
            "nothing to ingest: no readable file of a supported type was given",
            "supported: .txt .md .rst .html .htm .pdf; see the warnings above",
        )

    if exists:
        store = FaissStore.open(directory, writable=True)
        embedder = Embedder(store.manifest["embedder"]["name"], settings.batch_size)
    else:
        embedder = Embedder(settings.embed_model, settings.batch_size)
        chunking = {
            "chunk_size": settings.chunk_size or DEFAULT_CHUNK_SIZE,
            "chunk_overlap": (
                settings.chunk_overlap
                if settings.chunk_overlap is not None
                else DEFAULT_CHUNK_OVERLAP
            ),
        }
        manifest = make_manifest(
            settings.collection, embedder.name, embedder.dimension, embedder.max_tokens, chunking
        )
        store = FaissStore.create(directory, manifest)
    try:
        _ingest_into(store, embedder, inputs, report, events)
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
            shutil.rmtree(directory, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    if not (report.added or report.updated or report.unchanged):
        raise NothingIngestedError(
            f"nothing ingested: all {len(report.skipped)} input(s) were skipped",
            "see the warnings above",
        )
    return report


def _plan(directory: Path | None, inputs: list[_Input], report: IngestReport) -> None:
    """Classify inputs as new, changed or unchanged without loading any model."""
    store = FaissStore.open(directory) if directory else None
    try:
        for item in inputs:
            stored = store.document(str(item.path)) if store else None
            if stored is None:
                report.added.append(item.source)
                continue
            stat = item.path.stat()
            if stat.st_size == stored.size and stat.st_mtime == stored.mtime:
                report.unchanged.append(item.source)
            else:
                report.updated.append(item.source)  # may turn out unchanged by content
    finally:
        if store:
            store.close()


def _ingest_into(
    store: FaissStore,
    embedder: Embedder,
    inputs: list[_Input],
    report: IngestReport,
    events: Events,
) -> None:
    chunking = store.manifest["chunking"]
    pending: list[tuple[Document, list[Chunk], bool]] = []
    pending_chunks = 0
    last_commit = time.monotonic()
    events.start(len(inputs), "ingesting")
    try:
        for item in inputs:
            events.advance()
            stored = store.document(str(item.path))
            try:
                stat = item.path.stat()
                if stored and stat.st_size == stored.size and stat.st_mtime == stored.mtime:
                    report.unchanged.append(item.source)
                    continue
                document = load_document(item.path, item.source)
            except LoaderError as e:
                report.skipped.append(SkippedFile(item.source, e.message))
                events.warn(f"skipped {item.source}: {e.message}")
                continue
            except OSError as e:
                report.skipped.append(SkippedFile(item.source, str(e)))
                events.warn(f"skipped {item.source}: {e}")
                continue
            if stored and stored.sha256 == document.sha256:
                store.touch(str(item.path), document.mtime)
                report.unchanged.append(item.source)
                continue
            chunks = split_document(
                document,
                embedder.count_tokens,
                chunking["chunk_size"],
                chunking["chunk_overlap"],
                max_tokens=embedder.max_tokens,
            )
            pending.append((document, chunks, stored is not None))
            pending_chunks += len(chunks)
            if pending_chunks >= EMBED_BATCH_CHUNKS:
                _flush(store, embedder, pending, report)
                pending, pending_chunks = [], 0
                if time.monotonic() - last_commit > COMMIT_EVERY_SECONDS:
                    store.save()
                    last_commit = time.monotonic()
        _flush(store, embedder, pending, report)
        store.save()
    finally:
        events.finish()


def _flush(
    store: FaissStore,
    embedder: Embedder,
    pending: list[tuple[Document, list[Chunk], bool]],
    report: IngestReport,
) -> None:
    """Embed the pending documents' chunks in one go and stage them in the store."""
    if not pending:
        return
    vectors = embedder.embed([c.text for _, chunks, _ in pending for c in chunks])
    offset = 0
    for document, chunks, replacing in pending:
        if replacing:
            report.chunks_removed += store.delete(str(document.path))
            report.updated.append(document.source)
        else:
            report.added.append(document.source)
        store.add(document, chunks, vectors[offset : offset + len(chunks)])
        offset += len(chunks)
        report.chunks_added += len(chunks)


# -- search and ask ----------------------------------------------------------------------------


def _open_for_reading(settings: Settings) -> tuple[FaissStore, Embedder]:
    directory = settings.collection_dir
    manifest = read_manifest(directory)
    _check_embedder(manifest, settings)
    store = FaissStore.open(directory)
    if store.chunk_count == 0:
        store.close()
        raise CollectionNotFoundError(
            f"collection {settings.collection!r} is empty", "run `ragcli ingest PATH` first"
        )
    return store, Embedder(manifest["embedder"]["name"], settings.batch_size)


def search(settings: Settings, question: str, top_k: int | None = None) -> SearchResult:
    """The collection's passages closest to the question."""
    store, embedder = _open_for_reading(settings)
    try:
        started = time.perf_counter()
        embedder.model  # noqa: B018 - load outside the retrieval timing
        loaded = time.perf_counter()
        hits = retrieve(store, embedder, question, top_k or settings.top_k)
        done = time.perf_counter()
    finally:
        store.close()
    return SearchResult(
        question=question,
        collection=settings.collection,
        embedder=embedder.name,
        hits=hits,
        timings={"embedder_load_s": loaded - started, "retrieve_s": done - loaded},
    )


def ask(
    settings: Settings,
    question: str,
    top_k: int | None = None,
    events: Events | None = None,
    on_token: Callable[[str], None] | None = None,
) -> Answer:
    """Retrieve passages, generate a cited answer from them, and resolve its citations."""
    events = events or Events()
    found = search(settings, question, top_k)
    generator = Generator(settings.llm, settings.model_cache_dir, events.status)
    generator.load()
    budget = generator.context_window - settings.max_tokens
    messages, packed = build_messages(question, found.hits, generator.prompt_tokens, budget)
    if not packed:
        raise RagcliError(
            f"no passage fits the generator's context window ({generator.context_window} "
            f"tokens, {settings.max_tokens} of them kept for the answer)",
            "lower --max-tokens, or use a generator with a longer context",
        )
    started = time.perf_counter()
    first_token: float | None = None
    pieces: list[str] = []
    for piece in generator.stream(messages, settings.max_tokens):
        if first_token is None:
            first_token = time.perf_counter() - started
        pieces.append(piece)
        if on_token:
            on_token(piece)
    generate_s = time.perf_counter() - started
    text = "".join(pieces).strip()
    citations, unknown = find_citations(text, packed)
    tokens = generator.last_token_count
    decode_s = generate_s - (first_token or 0.0)
    return Answer(
        question=question,
        text=text,
        collection=settings.collection,
        embedder=found.embedder,
        generator=generator.name,
        passages=packed,
        citations=citations,
        unknown_markers=unknown,
        tokens=tokens,
        timings={
            **found.timings,
            "generator_load_s": generator.load_seconds,
            "prompt_tokens": float(generator.last_prompt_tokens),
            "first_token_s": first_token or 0.0,
            "generate_s": generate_s,
            "decode_tokens_per_s": (tokens - 1) / decode_s if tokens > 1 and decode_s > 0 else 0.0,
        },
    )
