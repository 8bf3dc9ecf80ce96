"""The on-disk collection: a FAISS index of normalized vectors plus SQLite metadata.

A commit writes the vectors to a new ``vectors-<generation>.faiss`` file first and then, in one
SQLite transaction, the metadata together with the new generation number. A crash before that
transaction commits leaves the previous generation in force; after it, the new one. Readers open
whichever generation SQLite names, so they keep working during an ingest.

The index is exact (``IndexFlatIP``) while the collection is small and approximate (``IVFFlat``,
whose lists keep the full vectors) from ``APPROXIMATE_FROM`` chunks on; the switch, and a
retraining when the collection has grown, happen at commit time.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.errors import (
    IncompatibleCollectionError,
)
from ragcli.records import Chunk, Document, Hit
from ragcli.store.common import (
    DOCUMENT_INSERT_COLUMNS,
    FORMAT_VERSION,
    MANIFEST,
    StoredDocument,
    check_dimension,
    document_row,
)
from ragcli.store.faiss_index import (
    EXACT_FILTER_LIMIT,
    fitted_index,
    flat_index,
    is_approximate,
    one_thread,
)
from ragcli.store.folder_files import (
    DATABASE,
    LOCK,
    fsync_dir,
    lock_collection,
    read_manifest,
    write_atomic,
)

if TYPE_CHECKING:
    import numpy as np

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
    ingested_at REAL NOT NULL,
    root TEXT,    -- the folder argument the file was found in; NULL for a file or glob argument
    origin TEXT   -- root + the file's path under it (before symlinks are resolved)
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


_DOCUMENT_COLUMNS = "path AS key, file, doc_id, source, sha256, size, mtime, chunks"
# Added by format 2; a version-1 database read as it is lacks them.
_ORIGIN_COLUMNS = (("root", "TEXT"), ("origin", "TEXT"))


# -- the collection ---------------------------------------------------------------------------


class FaissStore:
    """A collection in one folder: ``manifest.json``, ``meta.sqlite``, ``vectors-N.faiss``.

    Readers load the vectors at once, on the same SQLite snapshot as every later query.
    Writers hold the collection's lock and load the vectors on first use, so an ingest that
    changes nothing never reads them.
    """

    def __init__(
        self,
        directory: Path,
        manifest: dict[str, Any],
        writable: bool,
        load_vectors: bool = True,
        generation_floor: int = 0,
        lock_fd: int | None = None,
    ) -> None:
        self.directory = directory
        self.manifest = manifest
        self.writable = writable
        self._lock_fd: int | None = lock_fd
        self._publish_to: Path | None = None
        self._dirty = False  # an SQLite transaction is open
        self._index_dirty = False  # the vectors changed since the last commit
        self._index: Any = None
        self._load_vectors = load_vectors
        # The first commit makes generation floor + 1: a rebuilt collection never reuses a
        # generation number of the one it replaces, so a reader caught by the swap notices.
        self._generation_floor = generation_floor
        if writable and lock_fd is None:
            self._lock()
        self.db: sqlite3.Connection = None  # type: ignore[assignment]
        try:
            self._connect()
            if writable:
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.executescript(_SCHEMA)
                self._upgrade()
                self._remove_stale(keep=self.generation or None)
            elif load_vectors:
                self._index = self._load_index()
            else:
                self._begin_snapshot()
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
    def create(
        cls,
        directory: Path,
        manifest: dict[str, Any],
        generation_floor: int = 0,
        publish_to: Path | None = None,
    ) -> FaissStore:
        """Make a new, empty collection folder and open it for writing.

        With ``publish_to``, ``directory`` is a hidden staging folder (what a writer that died
        there left is cleared) that the first commit renames to ``publish_to``: a new
        collection appears whole, or not at all.
        """
        directory.mkdir(parents=True, exist_ok=True)
        fd = lock_collection(directory)
        try:
            if publish_to is not None:
                for stale in directory.iterdir():
                    if stale.name != LOCK:
                        stale.unlink()
            write_atomic(directory / MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n")
            store = cls(directory, manifest, True, generation_floor=generation_floor, lock_fd=fd)
        except BaseException:
            if fd is not None:
                os.close(fd)
            raise
        store._publish_to = publish_to
        return store

    @classmethod
    def open(cls, directory: Path, writable: bool = False, load_vectors: bool = True) -> FaissStore:
        """Open an existing collection; writers take the collection's lock.

        ``load_vectors=False`` opens a reader for metadata only (counts, documents).
        """
        return cls(directory, read_manifest(directory), writable, load_vectors)

    def _connect(self) -> None:
        self.db = sqlite3.connect(self.directory / DATABASE, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA foreign_keys = ON")
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(documents)")}
        self._has_origin = all(name in columns for name, _ in _ORIGIN_COLUMNS)

    def _upgrade(self) -> None:
        """Bring a version-1 collection to the current format (new columns, then manifest)."""
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(documents)")}
        self._has_origin = all(name in columns for name, _ in _ORIGIN_COLUMNS)
        if not self._has_origin:
            for name, kind in _ORIGIN_COLUMNS:
                with contextlib.suppress(sqlite3.OperationalError):  # already there
                    self.db.execute(f"ALTER TABLE documents ADD COLUMN {name} {kind}")
            self._has_origin = True
        if self.manifest.get("format_version") != FORMAT_VERSION:
            self.manifest["format_version"] = FORMAT_VERSION
            data = json.dumps(self.manifest, indent=2).encode() + b"\n"
            write_atomic(self.directory / MANIFEST, data)

    def _begin_snapshot(self) -> None:
        # One read snapshot for the generation, the chunk count and every later query, so a
        # writer committing meanwhile cannot mix two generations.
        if self.db.in_transaction:
            self.db.execute("COMMIT")
        self.db.execute("BEGIN")

    def _lock(self) -> None:
        self._lock_fd = lock_collection(self.directory)

    @property
    def generation(self) -> int:
        row = self.db.execute("SELECT value FROM state WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def _state(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def _vectors_path(self, generation: int) -> Path:
        return self.directory / f"vectors-{generation}.faiss"

    @property
    def index(self) -> Any:
        """The FAISS index of the committed generation plus this writer's pending changes."""
        if self._index is None:
            if not self.writable and not self._load_vectors:
                raise RuntimeError("collection opened without its vectors")
            self._index = self._load_index()
        return self._index

    def _load_index(self) -> Any:
        import faiss

        attempts = 5
        for attempt in range(attempts):
            if not self.writable:
                self._begin_snapshot()
            generation = self.generation
            if generation == 0:
                return flat_index(int(self.manifest["embedder"]["dimension"]))
            path = self._vectors_path(generation)
            try:
                index = faiss.read_index(str(path))
            except RuntimeError:
                if not path.exists() and not self.writable and attempt < attempts - 1:
                    # A writer committed a newer generation and removed this one, or a
                    # rebuild swapped the folder: start again from what is there now.
                    self._reconnect()
                    continue
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
            return index
        raise IncompatibleCollectionError(f"collection {self.directory.name!r} keeps changing")

    def _reconnect(self) -> None:
        self.db.close()
        self.manifest = read_manifest(self.directory)
        self._connect()

    def _remove_stale(self, keep: int | None) -> None:
        """Delete vector files left by an ingest that died before its commit."""
        for path in self.directory.glob("vectors-*.faiss*"):
            if keep is None or path.name != self._vectors_path(keep).name:
                path.unlink(missing_ok=True)

    # -- reading -----------------------------------------------------------------------------

    def _columns(self) -> str:
        extra = "root, origin" if self._has_origin else "NULL AS root, NULL AS origin"
        return f"{_DOCUMENT_COLUMNS}, {extra}"

    def documents_of_file(self, file: str) -> list[StoredDocument]:
        rows = self.db.execute(
            f"SELECT {self._columns()} FROM documents WHERE file = ? ORDER BY id", (file,)
        ).fetchall()
        return [StoredDocument(**dict(r)) for r in rows]

    def documents(self) -> list[StoredDocument]:
        rows = self.db.execute(
            f"SELECT {self._columns()} FROM documents ORDER BY source"
        ).fetchall()
        return [StoredDocument(**dict(r)) for r in rows]

    def documents_from_folder(self, folder: str) -> list[StoredDocument]:
        """Documents found under ``folder`` (or a folder inside it) by an ingest of a folder."""
        if not self._has_origin:
            return []
        prefix = folder.rstrip("/") + "/"
        rows = self.db.execute(
            f"SELECT {self._columns()} FROM documents WHERE substr(origin, 1, ?) = ? ORDER BY id",
            (len(prefix), prefix),
        ).fetchall()
        return [StoredDocument(**dict(r)) for r in rows]

    def ingest_arguments(self) -> list[str]:
        """What to read again to rebuild the collection: its folders, then its loose files."""
        roots = "root" if self._has_origin else "NULL"
        folders = [
            r[0]
            for r in self.db.execute(
                f"SELECT DISTINCT {roots} FROM documents WHERE {roots} IS NOT NULL ORDER BY 1"
            )
        ]
        files = [
            r[0]
            for r in self.db.execute(
                f"SELECT DISTINCT file FROM documents WHERE {roots} IS NULL ORDER BY 1"
            )
        ]
        return folders + files

    def document_details(self) -> list[dict[str, Any]]:
        """Every document with its size, chunk count and when it was ingested, by source."""
        rows = self.db.execute(
            "SELECT source, path, file, doc_id, format, title, chunks, size, mtime, ingested_at "
            "FROM documents ORDER BY source"
        )
        return [dict(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Documents, distinct files and chunks, from the metadata alone."""
        documents, files = self.db.execute(
            "SELECT count(*), count(DISTINCT file) FROM documents"
        ).fetchone()
        chunks = self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return {"documents": documents, "files": files, "chunks": chunks}

    def sample_texts(self, count: int) -> list[str]:
        """Up to ``count`` chunk texts spread over the collection, from the metadata alone."""
        total = self.db.execute("SELECT max(id) FROM chunks").fetchone()[0] or 0
        step = max(1, total // max(1, count))
        rows = self.db.execute(
            "SELECT text FROM chunks WHERE id % ? = 0 ORDER BY id LIMIT ?", (step, count)
        )
        return [r[0] for r in rows]

    @property
    def updated_at(self) -> float | None:
        """When the last commit happened (seconds since the epoch), or None before it."""
        value = self._state("updated_at")
        return float(value) if value is not None else None

    def disk_bytes(self) -> int:
        """Bytes the collection's folder takes on disk."""
        return sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())

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

        index = self.index
        if index.ntotal == 0 or k < 1:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        check_dimension(self.directory.name, index.d, query.shape[1])
        params: Any = None
        if source_glob is not None:
            allowed = np.asarray(self._ids_matching(source_glob), dtype=np.int64)
            if not len(allowed):
                return []
            approximate = is_approximate(index)
            if approximate and len(allowed) <= EXACT_FILTER_LIMIT:
                return self._exact(query[0], allowed, k)
            if approximate:
                params = faiss.SearchParametersIVF()
                # The allowed chunks are spread thinly over the lists: probe more of them.
                wider = index.nprobe * math.ceil(index.ntotal / len(allowed))
                params.nprobe = min(index.nlist, wider)
            else:
                params = faiss.SearchParameters()
            params.sel = faiss.IDSelectorBatch(allowed)
        with one_thread():
            scores, ids = index.search(query, min(k, index.ntotal), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def _exact(self, query: np.ndarray, ids: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` best of some chunks, every one scored."""
        import numpy as np

        scores = self.index.reconstruct_batch(ids) @ query
        best = np.argsort(-scores, kind="stable")[:k]
        return [(int(ids[i]), float(scores[i])) for i in best]

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

        if not len(ids):
            return np.zeros((0, self.index.d), dtype=np.float32)
        return self.index.reconstruct_batch(np.asarray(ids, dtype=np.int64))

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
                    row_id=chunk_id,
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

    def add(
        self,
        document: Document,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        root: str | None = None,
        origin: str | None = None,
    ) -> None:
        """Record a document with its chunks and their vectors (pending until ``save``)."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        document_id = self.add_document(document, len(chunks), root, origin)
        self.add_chunks(document_id, chunks, vectors)

    def add_document(
        self,
        document: Document,
        chunk_count: int,
        root: str | None = None,
        origin: str | None = None,
    ) -> int:
        """Record a document whose ``chunk_count`` chunks follow through ``add_chunks``."""
        self._begin()
        row = document_row(document, chunk_count, root, origin)
        cursor = self.db.execute(
            f"INSERT INTO documents ({DOCUMENT_INSERT_COLUMNS}) "
            f"VALUES ({', '.join('?' * len(row))})",
            row,
        )
        return int(cursor.lastrowid or 0)

    def add_chunks(self, document_id: int, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Record some of a document's chunks with their vectors, in order."""
        import numpy as np

        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        self._begin()
        index = self.index  # loaded (and checked against the chunk count) before rows change
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
            index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
            )
            self._index_dirty = True

    def touch_file(self, file: str, mtime: float) -> None:
        """Remember a new mtime for a file whose content did not change."""
        self._begin()
        self.db.execute("UPDATE documents SET mtime = ? WHERE file = ?", (mtime, file))

    def set_origin(self, file: str, root: str | None, origin: str | None) -> None:
        """Remember the folder argument (and path under it) a file was found through."""
        self._begin()
        self.db.execute(
            "UPDATE documents SET root = ?, origin = ? WHERE file = ?", (root, origin, file)
        )

    def delete_file(self, file: str) -> int:
        """Remove every document of a file with its chunks; returns how many chunks went."""
        return self._delete("d.file = ?", (file,))

    def delete_documents(self, keys: Iterable[str]) -> int:
        """Remove documents by key (their path, or ``file#id``); returns how many chunks went."""
        return sum(self._delete("d.path = ?", (key,)) for key in keys)

    def _delete(self, where: str, args: tuple[Any, ...]) -> int:
        import numpy as np

        self._begin()
        ids = [
            r[0]
            for r in self.db.execute(
                f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE {where}",
                args,
            )
        ]
        if ids:
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))  # loads before rows change
            self._index_dirty = True
        # Chunks go with their documents (ON DELETE CASCADE), the lexical index by trigger.
        self.db.execute(f"DELETE FROM documents WHERE {where.replace('d.', '')}", args)
        return len(ids)

    def save(self) -> None:
        """Commit pending changes: new vectors file first, then metadata and generation at once.

        A commit that changed metadata only (mtimes, origins) keeps the vectors file it has.
        """
        import faiss

        if not self._dirty:
            return
        old = self.generation
        new = old
        if self._index_dirty:
            self._index = fitted_index(self._index)
            new = max(old, self._generation_floor) + 1
            path = self._vectors_path(new)
            tmp = path.with_name(path.name + ".tmp")
            faiss.write_index(self._index, str(tmp))
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
            fsync_dir(self.directory)
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
        self._dirty = self._index_dirty = False
        if old and new != old:
            self._vectors_path(old).unlink(missing_ok=True)
        if self._publish_to is not None:
            os.rename(self.directory, self._publish_to)
            fsync_dir(self._publish_to.parent)
            self.directory, self._publish_to = self._publish_to, None

    def rollback(self) -> None:
        """Drop pending changes; the committed vectors are loaded again when next needed."""
        if self._dirty:
            self.db.execute("ROLLBACK")
            self._dirty = False
        if self._index_dirty:
            self._index = None
            self._index_dirty = False

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file (before the folder is moved)."""
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        if getattr(self, "db", None) is not None:
            if self.db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
            self._dirty = False
            self.db.close()
            self.db = None  # type: ignore[assignment]
        self._index = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> FaissStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def opened(
    directory: Path, writable: bool = False, load_vectors: bool = True
) -> Iterator[FaissStore]:
    """Open a collection for the length of a ``with`` block."""
    store = FaissStore.open(directory, writable=writable, load_vectors=load_vectors)
    try:
        yield store
    finally:
        store.close()
