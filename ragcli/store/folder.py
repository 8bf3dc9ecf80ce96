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
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.errors import (
    IncompatibleCollectionError,
)
from ragcli.records import Chunk
from ragcli.store.base import STORED_DOCUMENT_COLUMNS, SqlStore
from ragcli.store.common import (
    FORMAT_VERSION,
    MANIFEST,
    check_dimension,
)
from ragcli.store.faiss_index import fitted_index, flat_index, search_index
from ragcli.store.folder_db import (
    add_metadata_columns,
    add_origin_columns,
    connect,
    create_tables,
    has_metadata_columns,
    has_origin_columns,
    sqlite_query,
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

    from ragcli.filters import Filters


# -- the collection ---------------------------------------------------------------------------


class FaissStore(SqlStore):
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
                create_tables(self.db)
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
        self.db = connect(self.directory / DATABASE)
        self._has_origin = has_origin_columns(self.db)
        self._has_front_matter, self._has_loader = has_metadata_columns(self.db)

    def _upgrade(self) -> None:
        """Bring an older collection to the current format (new columns, then manifest)."""
        add_origin_columns(self.db)
        add_metadata_columns(self.db)
        self._has_origin = self._has_front_matter = self._has_loader = True
        if self.manifest.get("format_version") != FORMAT_VERSION:
            self.manifest["format_version"] = FORMAT_VERSION
            data = json.dumps(self.manifest, indent=2).encode() + b"\n"
            write_atomic(self.directory / MANIFEST, data)

    def set_manifest_entry(self, key: str, value: Any) -> None:
        if not self.writable:
            raise RuntimeError("collection opened read-only")
        manifest = {k: v for k, v in read_manifest(self.directory).items() if k != key}
        if value is not None:
            manifest[key] = value
        write_atomic(self.directory / MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n")
        fsync_dir(self.directory)
        self.manifest = manifest

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

    @property
    def name(self) -> str:
        return self.directory.name

    def _rows(self, query: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]:
        return self.db.execute(sqlite_query(query), args).fetchall()

    def _execute(self, query: str, args: Sequence[Any] = ()) -> None:
        self.db.execute(sqlite_query(query), args)

    def _insert(self, query: str, args: Sequence[Any]) -> int:
        return int(self.db.execute(sqlite_query(query), args).lastrowid or 0)

    def _document_columns(self) -> str:
        if self._has_origin:
            return STORED_DOCUMENT_COLUMNS
        return STORED_DOCUMENT_COLUMNS.replace("root, origin", "NULL AS root, NULL AS origin")

    def _root(self) -> str:
        return "root" if self._has_origin else "NULL"

    def _has_metadata(self) -> bool:
        return self._has_front_matter

    def _has_loader_columns(self) -> bool:
        return self._has_loader

    def _glob(self, glob: str) -> tuple[str, list[Any]]:
        return "d.source GLOB %s", [glob]

    def _any_tag(self, tags: Sequence[str]) -> tuple[str, list[Any]]:
        marks = ", ".join(["%s"] * len(tags))
        condition = f"EXISTS (SELECT 1 FROM json_each(d.tags) WHERE json_each.value IN ({marks}))"
        return condition, list(tags)

    def _under(self, prefix: str) -> tuple[str, list[Any]]:
        if not self._has_origin:
            return "0 = 1", []
        return "substr(origin, 1, %s) = %s", [len(prefix), prefix]

    def _stored_chunks(self) -> int:
        return int(self._rows("SELECT count(*) FROM {chunks}")[0][0])

    def _index_problems(self, chunks: int) -> list[str]:
        vectors = int(self.index.ntotal)
        # FTS5 keeps one size row for every text it indexed.
        lexical = int(self._rows("SELECT count(*) FROM chunks_fts_docsize")[0][0])
        found = {"vectors": vectors, "lexical entries": lexical}
        return [f"{count} {what}" for what, count in found.items() if count != chunks]

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

    def dense(
        self, vector: np.ndarray, k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine) of the ``k`` nearest vectors, best first; with ``filters``, the
        index searches only the chunks of the documents they allow."""
        import numpy as np

        index = self.index
        if index.ntotal == 0 or k < 1:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        check_dimension(self.name, index.d, query.shape[1])
        if not filters:
            return search_index(index, query[0], k)
        where, args = self._document_filter(filters)
        allowed = self._rows(
            "SELECT c.id FROM {chunks} c JOIN {documents} d ON d.id = c.document_id "
            f"WHERE {where}",
            args,
        )
        return search_index(index, query[0], k, np.asarray([r[0] for r in allowed], np.int64))

    def lexical(
        self, terms: Sequence[str], k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the ``k`` best chunks for any of the terms, best first;
        with ``filters``, among the chunks of the documents they allow."""
        words = [w for w in (t.replace('"', "") for t in terms) if w]
        if not words or k < 1:
            return []
        match = " OR ".join(f'"{w}"' for w in words)
        sql = "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH %s"
        args: list[Any] = [match]
        if filters:
            where, values = self._document_filter(filters)
            sql += (
                " AND rowid IN (SELECT c.id FROM {chunks} c JOIN {documents} d "
                f"ON d.id = c.document_id WHERE {where})"
            )
            args += values
        sql += " ORDER BY bm25(chunks_fts) LIMIT %s"
        args.append(k)
        # SQLite's bm25() is lower-is-better; flip it so every score is higher-is-better.
        return [(int(r[0]), -float(r[1])) for r in self._rows(sql, args)]

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of some chunks, one row each."""
        import numpy as np

        if not len(ids):
            return np.zeros((0, self.index.d), dtype=np.float32)
        return self.index.reconstruct_batch(np.asarray(ids, dtype=np.int64))

    # -- writing -----------------------------------------------------------------------------

    def _write(self) -> None:
        if not self.writable:
            raise RuntimeError("collection opened read-only")
        if not self._dirty:
            self.db.execute("BEGIN IMMEDIATE")
            self._dirty = True

    def add_chunks(self, document_id: int, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Record some of a document's chunks with their vectors, in order."""
        import numpy as np

        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        self._write()
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

    def _forget_chunks(self, where: str, args: Sequence[Any]) -> int:
        import numpy as np

        ids = [
            r[0]
            for r in self._rows(
                f"SELECT id FROM {{chunks}} WHERE document_id IN "
                f"(SELECT id FROM {{documents}} WHERE {where})",
                args,
            )
        ]
        if ids:
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))  # loads before rows change
            self._index_dirty = True
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
