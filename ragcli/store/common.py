"""What both stores share: the collection format, the manifest, stored documents, the interface."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ragcli import __version__
from ragcli.errors import IncompatibleCollectionError
from ragcli.records import Chunk, Document, Hit

if TYPE_CHECKING:
    import numpy as np

    from ragcli.filters import Filters

FORMAT_NAME = "ragcli-collection"
# 2: documents remember the folder they were found in (root, origin), which pruning needs, and
# large collections may hold an IVF index. Version 1 is read, and upgraded by its next writer.
# The documents' date and tags (Markdown front matter), and later their pages, OCR'd pages and
# loader warnings, came without a new version: the
# columns are only added, an older ragcli reads such a collection as it is (and writes documents
# without them, which filters then treat as undated and untagged), and a collection without
# them is read as it is and given them by its next writer.
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
MANIFEST = "manifest.json"


@dataclass
class StoredDocument:
    """What the collection remembers of an ingested document."""

    key: str  # its file, or "file#id" for a record of a .jsonl corpus (column "path")
    file: str
    doc_id: str
    source: str
    sha256: str
    size: int
    mtime: float
    chunks: int
    root: str | None = None
    origin: str | None = None


class CollectionReader(Protocol):
    """What retrieval needs of an open collection: scored chunk ids, their vectors and hits."""

    manifest: dict[str, Any]

    def dense(
        self, vector: np.ndarray, k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]: ...
    def lexical(
        self, terms: Sequence[str], k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]: ...
    def vectors(self, ids: Sequence[int]) -> np.ndarray: ...
    def hits(self, scored: Sequence[tuple[int, float]]) -> list[Hit]: ...


class Store(CollectionReader, Protocol):
    """An open collection, as the use cases read and write it, in a folder or in PostgreSQL."""

    before_waiting: Callable[[], None] | None

    @property
    def chunk_count(self) -> int: ...
    @property
    def updated_at(self) -> float | None: ...
    @property
    def generation(self) -> int: ...
    def documents(self) -> list[StoredDocument]: ...
    def documents_of_file(self, file: str) -> list[StoredDocument]: ...
    def documents_from_folder(self, folder: str) -> list[StoredDocument]: ...
    def matching_documents(self, filters: Filters) -> int: ...
    def ingest_arguments(self) -> list[str]: ...
    def document_details(self) -> list[dict[str, Any]]: ...
    def counts(self) -> dict[str, int]: ...
    def sample_texts(self, count: int) -> list[str]: ...
    def sample_chunks(self, count: int, offset: int = 0) -> list[Hit]: ...
    def passage(self, chunk_key: str) -> Hit | None: ...
    def document_passages(self, doc_id: str) -> list[Hit]: ...
    def files_of_chunks(self, ids: Sequence[int]) -> dict[int, tuple[str, int, float]]: ...
    def disk_bytes(self) -> int: ...
    def add_document(
        self,
        document: Document,
        chunk_count: int,
        root: str | None = None,
        origin: str | None = None,
    ) -> int: ...
    def add_chunks(
        self, document_id: int, chunks: Sequence[Chunk], vectors: np.ndarray
    ) -> None: ...
    def touch_file(self, file: str, mtime: float) -> None: ...
    def set_origin(self, file: str, root: str | None, origin: str | None) -> None: ...
    def set_manifest_entry(self, key: str, value: Any) -> None: ...
    def delete_file(self, file: str) -> int: ...
    def delete_documents(self, keys: Iterable[str]) -> int: ...
    def save(self) -> None: ...
    def rollback(self) -> None: ...
    def compact(self) -> None: ...
    def snapshot(self) -> AbstractContextManager[object]: ...
    def close(self) -> None: ...
    def check(self) -> int: ...


@dataclass
class IndexDescription:
    """What kind of vector search a collection does, whatever its store (``ragcli status``)."""

    kind: str  # "exact" or "approximate"
    type: str  # "FlatIP", "IVFFlat", "pgvector sequential scan" or "HNSW"
    summary: str  # one line for people
    lists: int | None = None  # IVF lists
    probes: int | None = None  # IVF lists searched per query
    ef_search: int | None = None  # HNSW candidates kept per query
    vectors: str = "float32"  # how vectors are kept: float32, int8 or binary
    segments: int | None = None  # segment files (folder store)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "type": self.type,
            "lists": self.lists,
            "probes": self.probes,
            "ef_search": self.ef_search,
            "vectors": self.vectors,
            "segments": self.segments,
        }


def check_format(manifest: Any, name: str, where: str) -> dict[str, Any]:
    """``manifest`` if it is a ragcli collection's of a format this version reads; else why not.

    ``name`` is the collection's, ``where`` what to call the manifest in the error.
    """
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise IncompatibleCollectionError(f"{where} is not a ragcli collection manifest")
    version = manifest.get("format_version")
    if version not in READABLE_VERSIONS:
        raise IncompatibleCollectionError(
            f"collection {name!r} has format version {version}; this ragcli reads "
            f"versions {', '.join(map(str, READABLE_VERSIONS))}",
            "use the ragcli version that wrote it, or re-ingest into a new collection",
        )
    return manifest


def check_dimension(name: str, stored: int, query: int) -> None:
    """Refuse a query vector of another dimension than the collection's."""
    if query != stored:
        raise IncompatibleCollectionError(
            f"collection {name!r} holds {stored}-dimensional vectors, the query has {query}",
            "it was rebuilt with another embedder meanwhile: run the command again",
        )


# The documents table's columns a new document fills, in the order of ``document_row``.
DOCUMENT_INSERT_COLUMNS = (
    "path, file, doc_id, source, format, title, sha256, size, mtime, chunks, ingested_at, "
    "root, origin, date, tags, pages, ocr_pages, warnings"
)


def document_row(
    document: Document, chunk_count: int, root: str | None, origin: str | None
) -> tuple[Any, ...]:
    """The values of a new document's row, in the order of ``DOCUMENT_INSERT_COLUMNS``."""
    read_by_ocr = document.ocr_pages
    return (
        document.key,
        str(document.path),
        document.doc_id,
        document.source,
        document.format,
        document.title,
        document.sha256,
        document.size,
        document.mtime,
        chunk_count,
        time.time(),
        root,
        origin,
        document.date,
        json.dumps(document.tags) if document.tags else None,
        document.pages,
        json.dumps(read_by_ocr) if read_by_ocr else None,
        json.dumps(document.notes) if document.notes else None,
    )


# A new collection's vectors: int8 kept recall@10 at 0.989-0.994 of exact float32 search and
# nDCG@10 within 0.001 on Cranfield and SciFact-train, in a quarter of the bytes
# (benchmarks/vector_kinds.py). Segments under 1,024 vectors stay float32 whatever the codec.
DEFAULT_VECTORS = "int8"


def vector_kind(manifest: dict[str, Any]) -> str:
    """How the collection keeps its vectors: "float32", "int8" or "binary"."""
    return str(manifest.get("vectors", "float32"))


def make_manifest(
    name: str,
    embedder: str,
    dimension: int,
    max_tokens: int,
    chunking: dict[str, int],
    vectors: str = DEFAULT_VECTORS,
) -> dict[str, Any]:
    """The settings a collection is bound to for life."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "name": name,
        "embedder": {"name": embedder, "dimension": dimension, "max_tokens": max_tokens},
        "chunking": chunking,
        "vectors": vectors,
        "created_by": f"ragcli {__version__}",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
