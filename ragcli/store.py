"""The on-disk collection: a FAISS index of normalized vectors plus SQLite metadata.

A commit writes the vectors to a new ``vectors-<generation>.faiss`` file first and then, in one
SQLite transaction, the metadata together with the new generation number. A crash before that
transaction commits leaves the previous generation in force; after it, the new one. Readers open
whichever generation SQLite names, so they keep working during an ingest.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ragcli import __version__
from ragcli.errors import (
    CollectionBusyError,
    CollectionNotFoundError,
    IncompatibleCollectionError,
)
from ragcli.models import Chunk, Document, Hit

if TYPE_CHECKING:
    import numpy as np

FORMAT_NAME = "ragcli-collection"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "meta.sqlite"
LOCK = "write.lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    file TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    source TEXT NOT NULL,
    format TEXT NOT NULL,
    title TEXT,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    chunks INTEGER NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_by_file ON documents(file);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    n_tokens INTEGER NOT NULL,
    page INTEGER,
    line_start INTEGER,
    line_end INTEGER,
    heading TEXT
);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks(document_id);
-- The lexical index: BM25 over the chunk texts (Porter stemming), kept in step by triggers so
-- it commits in the same transaction as the metadata.
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, content='chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
"""


@dataclass
class StoredDocument:
    """What the collection remembers of an ingested document."""

    path: str  # the document's key: its file, or "file#id" for a record of a .jsonl corpus
    file: str
    doc_id: str
    source: str
    sha256: str
    size: int
    mtime: float
    chunks: int


_DOCUMENT_COLUMNS = "path, file, doc_id, source, sha256, size, mtime, chunks"


class Store(Protocol):
    """What the pipeline needs of a collection backend."""

    manifest: dict[str, Any]

    def documents_of_file(self, file: str) -> list[StoredDocument]: ...
    def add(self, document: Document, chunks: Sequence[Chunk], vectors: np.ndarray) -> None: ...
    def delete_file(self, file: str) -> int: ...
    def dense(
        self, vector: np.ndarray, k: int, source_glob: str | None = None
    ) -> list[tuple[int, float]]: ...
    def lexical(
        self, terms: Sequence[str], k: int, source_glob: str | None = None
    ) -> list[tuple[int, float]]: ...
    def vectors(self, ids: Sequence[int]) -> np.ndarray: ...
    def hits(self, scored: Sequence[tuple[int, float]]) -> list[Hit]: ...
    def save(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


def make_manifest(
    name: str, embedder: str, dimension: int, max_tokens: int, chunking: dict[str, int]
) -> dict[str, Any]:
    """The settings a collection is bound to for life."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "name": name,
        "embedder": {"name": embedder, "dimension": dimension, "max_tokens": max_tokens},
        "chunking": chunking,
        "created_by": f"ragcli {__version__}",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def read_manifest(directory: Path) -> dict[str, Any]:
    """Read and check a collection's manifest; raise a clear error if it is missing or foreign."""
    path = directory / MANIFEST
    if not path.is_file():
        if directory.exists():
            raise IncompatibleCollectionError(
                f"{directory} is not a ragcli collection (no {MANIFEST})",
                "remove the folder or pick another collection name with -c",
            )
        raise CollectionNotFoundError(
            f"collection {directory.name!r} does not exist",
            "run `ragcli ingest PATH` first",
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IncompatibleCollectionError(f"damaged collection manifest {path}: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise IncompatibleCollectionError(f"{path} is not a ragcli collection manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IncompatibleCollectionError(
            f"collection {directory.name!r} has format version {version}; this ragcli reads "
            f"version {FORMAT_VERSION}",
            "use the ragcli version that wrote it, or re-ingest into a new collection",
        )
    return manifest


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class FaissStore:
    """A collection in one folder: ``manifest.json``, ``meta.sqlite``, ``vectors-N.faiss``."""

    def __init__(self, directory: Path, manifest: dict[str, Any], writable: bool) -> None:
        self.directory = directory
        self.manifest = manifest
        self.writable = writable
        self._lock_fd: int | None = None
        self._dirty = False
        if writable:
            self._lock()
        self.db = sqlite3.connect(directory / DATABASE, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        try:
            self.db.execute("PRAGMA foreign_keys = ON")
            if writable:
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.executescript(_SCHEMA)
            self.index = self._load_index()
        except sqlite3.DatabaseError as e:
            self.close()
            raise IncompatibleCollectionError(
                f"damaged collection {directory.name!r}: {e}",
                "re-ingest into a new collection (-c NAME)",
            ) from e
        except BaseException:
            self.close()
            raise

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, manifest: dict[str, Any]) -> FaissStore:
        """Make a new, empty collection folder and open it for writing."""
        directory.mkdir(parents=True, exist_ok=True)
        _write_atomic(directory / MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n")
        return cls(directory, manifest, writable=True)

    @classmethod
    def open(cls, directory: Path, writable: bool = False) -> FaissStore:
        """Open an existing collection; writers take the collection's lock."""
        return cls(directory, read_manifest(directory), writable=writable)

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no advisory locks on this platform
            return
        fd = os.open(self.directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            raise CollectionBusyError(
                f"collection {self.directory.name!r} is being written by another ragcli process",
                "wait for that ingest to finish, then run this one again",
            ) from e
        self._lock_fd = fd

    @property
    def generation(self) -> int:
        row = self.db.execute("SELECT value FROM state WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def _vectors_path(self, generation: int) -> Path:
        return self.directory / f"vectors-{generation}.faiss"

    def _load_index(self) -> Any:
        import faiss

        attempts = 5
        for attempt in range(attempts):
            if not self.writable:
                # One read snapshot for the generation, the chunk count and every later query,
                # so a writer committing meanwhile cannot mix two generations.
                if self.db.in_transaction:
                    self.db.execute("COMMIT")
                self.db.execute("BEGIN")
            generation = self.generation
            if generation == 0:
                if self.writable:
                    self._remove_stale(keep=None)
                dimension = int(self.manifest["embedder"]["dimension"])
                return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
            path = self._vectors_path(generation)
            try:
                index = faiss.read_index(str(path))
            except RuntimeError:
                if not path.exists() and not self.writable and attempt < attempts - 1:
                    continue  # a writer committed a newer generation and removed this one
                problem = "cannot read" if path.exists() else "missing"
                raise IncompatibleCollectionError(
                    f"damaged collection {self.directory.name!r}: {path.name} {problem}",
                    "re-ingest into a new collection (-c NAME)",
                ) from None
            count = self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
            if index.ntotal != count:
                raise IncompatibleCollectionError(
                    f"damaged collection {self.directory.name!r}: {index.ntotal} vectors for "
                    f"{count} chunks",
                    "re-ingest into a new collection (-c NAME)",
                )
            if self.writable:
                self._remove_stale(keep=generation)
            return index
        raise IncompatibleCollectionError(f"collection {self.directory.name!r} keeps changing")

    def _remove_stale(self, keep: int | None) -> None:
        """Delete vector files left by an ingest that died before its commit."""
        for path in self.directory.glob("vectors-*.faiss*"):
            if keep is None or path.name != self._vectors_path(keep).name:
                path.unlink(missing_ok=True)

    # -- reading -----------------------------------------------------------------------------

    def documents_of_file(self, file: str) -> list[StoredDocument]:
        rows = self.db.execute(
            f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE file = ? ORDER BY id", (file,)
        ).fetchall()
        return [StoredDocument(**dict(r)) for r in rows]

    def documents(self) -> list[StoredDocument]:
        rows = self.db.execute(
            f"SELECT {_DOCUMENT_COLUMNS} FROM documents ORDER BY source"
        ).fetchall()
        return [StoredDocument(**dict(r)) for r in rows]

    @property
    def chunk_count(self) -> int:
        return int(self.index.ntotal)

    def _ids_matching(self, source_glob: str) -> list[int]:
        return [
            r[0]
            for r in self.db.execute(
                "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id "
                "WHERE d.source GLOB ?",
                (source_glob,),
            )
        ]

    def dense(
        self, vector: np.ndarray, k: int, source_glob: str | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine) of the ``k`` nearest vectors, best first."""
        import faiss
        import numpy as np

        if self.index.ntotal == 0 or k < 1:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        params = None
        if source_glob is not None:
            allowed = self._ids_matching(source_glob)
            if not allowed:
                return []
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            params = faiss.SearchParameters()
            params.sel = selector
        scores, ids = self.index.search(query, min(k, self.index.ntotal), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def lexical(
        self, terms: Sequence[str], k: int, source_glob: str | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the ``k`` best chunks for any of the terms, best first."""
        words = [w for w in (t.replace('"', "") for t in terms) if w]
        if not words or k < 1:
            return []
        match = " OR ".join(f'"{w}"' for w in words)
        sql = "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ?"
        args: list[Any] = [match]
        if source_glob is not None:
            sql += (
                " AND rowid IN (SELECT c.id FROM chunks c JOIN documents d "
                "ON d.id = c.document_id WHERE d.source GLOB ?)"
            )
            args.append(source_glob)
        sql += " ORDER BY bm25(chunks_fts) LIMIT ?"
        args.append(k)
        # SQLite's bm25() is lower-is-better; flip it so every score is higher-is-better.
        return [(int(r[0]), -float(r[1])) for r in self.db.execute(sql, args)]

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of some chunks, one row each."""
        import numpy as np

        return np.stack([self.index.reconstruct(int(i)) for i in ids])

    def hits(self, scored: Sequence[tuple[int, float]]) -> list[Hit]:
        """Hits for (chunk id, score) pairs, in the given order."""
        found: dict[int, sqlite3.Row] = {}
        ids = [i for i, _ in scored]
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = ",".join("?" * len(batch))
            for r in self.db.execute(
                "SELECT c.id, c.key, c.ordinal, c.text, c.page, c.line_start, c.line_end, "
                "c.heading, d.source, d.doc_id FROM chunks c JOIN documents d "
                "ON d.id = c.document_id "
                f"WHERE c.id IN ({marks})",
                batch,
            ):
                found[r["id"]] = r
        hits: list[Hit] = []
        for chunk_id, score in scored:
            r = found.get(chunk_id)
            if r is None:
                continue
            hits.append(
                Hit(
                    rank=len(hits) + 1,
                    score=score,
                    text=r["text"],
                    source=r["source"],
                    chunk_key=r["key"],
                    page=r["page"],
                    line_start=r["line_start"],
                    line_end=r["line_end"],
                    heading=r["heading"],
                    doc_id=r["doc_id"],
                    ordinal=r["ordinal"],
                    chunk_id=chunk_id,
                )
            )
        return hits

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        """The ``k`` chunks whose vectors have the highest inner product with ``vector``."""
        return self.hits(self.dense(vector, k))

    # -- writing -----------------------------------------------------------------------------

    def _begin(self) -> None:
        if not self.writable:
            raise RuntimeError("collection opened read-only")
        if not self._dirty:
            self.db.execute("BEGIN IMMEDIATE")
            self._dirty = True

    def add(self, document: Document, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Record a document with its chunks and their vectors (pending until ``save``)."""
        import numpy as np

        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        self._begin()
        cursor = self.db.execute(
            "INSERT INTO documents (path, file, doc_id, source, format, title, sha256, size, "
            "mtime, chunks, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                document.key,
                str(document.path),
                document.doc_id,
                document.source,
                document.format,
                document.title,
                document.sha256,
                document.size,
                document.mtime,
                len(chunks),
                time.time(),
            ),
        )
        document_id = cursor.lastrowid
        ids = []
        for c in chunks:
            cursor = self.db.execute(
                "INSERT INTO chunks (document_id, key, ordinal, text, n_tokens, page, line_start, "
                "line_end, heading) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    document_id,
                    c.key,
                    c.ordinal,
                    c.text,
                    c.n_tokens,
                    c.page,
                    c.line_start,
                    c.line_end,
                    c.heading,
                ),
            )
            ids.append(cursor.lastrowid)
        if ids:
            self.index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
            )

    def touch_file(self, file: str, mtime: float) -> None:
        """Remember a new mtime for a file whose content did not change."""
        self._begin()
        self.db.execute("UPDATE documents SET mtime = ? WHERE file = ?", (mtime, file))

    def delete_file(self, file: str) -> int:
        """Remove every document of a file with its chunks; returns how many chunks went."""
        import numpy as np

        self._begin()
        ids = [
            r[0]
            for r in self.db.execute(
                "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id "
                "WHERE d.file = ?",
                (file,),
            )
        ]
        if ids:
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))
        # Chunks go with their documents (ON DELETE CASCADE), the lexical index by trigger.
        self.db.execute("DELETE FROM documents WHERE file = ?", (file,))
        return len(ids)

    def save(self) -> None:
        """Commit pending changes: new vectors file first, then metadata and generation at once."""
        import faiss

        if not self._dirty:
            return
        old = self.generation
        new = old + 1
        path = self._vectors_path(new)
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.directory)
        self.db.execute(
            "INSERT INTO state (key, value) VALUES ('generation', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(new),),
        )
        self.db.execute(
            "INSERT INTO state (key, value) VALUES ('updated_at', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(time.time()),),
        )
        self.db.execute("COMMIT")
        self._dirty = False
        if old:
            self._vectors_path(old).unlink(missing_ok=True)

    def rollback(self) -> None:
        """Drop pending changes and reload the last committed vectors."""
        if self._dirty:
            self.db.execute("ROLLBACK")
            self._dirty = False
            self.index = self._load_index()

    def close(self) -> None:
        if getattr(self, "db", None) is not None:
            if self.db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
            self._dirty = False
            self.db.close()
            self.db = None  # type: ignore[assignment]
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> FaissStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def opened(directory: Path, writable: bool = False) -> Iterator[FaissStore]:
    """Open a collection for the length of a ``with`` block."""
    store = FaissStore.open(directory, writable=writable)
    try:
        yield store
    finally:
        store.close()
