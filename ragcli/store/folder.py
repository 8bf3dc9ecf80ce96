"""The on-disk collection: vector segments (``segments.py``) plus SQLite metadata in a folder.

``FaissStore`` opens a collection (the writer's lock, the format upgrades, the staging folder a
new collection is published from) and reads it: readers load the committed segments on the
same SQLite snapshot as every later query, so a writer committing meanwhile never mixes two
generations; a reader caught by a merge or a rebuild's swap starts again on what is there.
Its writes (staging, commits, merges, ``compact``) are ``SegmentWriter``'s, in
``folder_writes.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.errors import (
    IncompatibleCollectionError,
)
from ragcli.store.base import STORED_DOCUMENT_COLUMNS, SqlStore
from ragcli.store.common import (
    FORMAT_VERSION,
    MANIFEST,
    IndexDescription,
    check_dimension,
    vector_kind,
)
from ragcli.store.faiss_index import (
    Quantizer,
    describe_segments,
)
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
from ragcli.store.folder_writes import SegmentWriter
from ragcli.store.segments import (
    LEGACY_LAST_ID,
    Segment,
    read_quantizer,
    read_segments,
    search_segments,
    vectors_of,
)

if TYPE_CHECKING:
    import numpy as np

    from ragcli.filters import Filters


# -- the collection ---------------------------------------------------------------------------


class FaissStore(SegmentWriter, SqlStore):
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
        # This writer's chunks not yet committed: their ids and vectors, and committed chunks
        # it removed.
        self._new_ids: list[np.ndarray] = []
        self._new_vectors: list[np.ndarray] = []
        self._removed: list[int] = []
        self._pending: set[int] = set()  # the ids in _new_ids
        self._segments: list[Segment] | None = None
        self._quantizer: Quantizer | None = None
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
                self._remove_stale()
            elif load_vectors:
                self._segments = self._load_segments()
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
        if generation_floor > store.generation:
            # Recorded at once, so that even a first commit that adds no vectors leaves the
            # generation above every one of the collection this replaces.
            store._set_state("generation", str(generation_floor))
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
        """Bring an older collection to the current format (new columns, its vectors file as
        the first segment, then the manifest)."""
        add_origin_columns(self.db)
        add_metadata_columns(self.db)
        if self._state("layout") != "segments":
            self.db.execute("BEGIN IMMEDIATE")
            for legacy in self._committed_segments():  # the one vectors file, if any
                self.db.execute(
                    "INSERT INTO segments (number, file, codec, first_id, last_id, vectors) "
                    "VALUES (?, ?, 'float32', 0, (SELECT coalesce(max(id), 0) FROM chunks), ?)",
                    (legacy.number, legacy.file, legacy.vectors),
                )
            self._set_state("layout", "segments")
            self.db.execute("COMMIT")
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

    @property
    def segments(self) -> list[Segment]:
        """The committed segments, loaded (a writer's pending chunks are not among them)."""
        if self._segments is None:
            if not self.writable and not self._load_vectors:
                raise RuntimeError("collection opened without its vectors")
            self._segments = self._load_segments()
        return self._segments

    def _load_segments(self) -> list[Segment]:
        attempts = 5
        for attempt in range(attempts):
            if not self.writable:
                self._begin_snapshot()
            segments = self._committed_segments()
            self._quantizer = read_quantizer(self.db)
            try:
                for segment in segments:
                    segment.load(self.directory)
            except (RuntimeError, ValueError) as e:
                missing = [s.file for s in segments if not (self.directory / s.file).exists()]
                if missing and not self.writable and attempt < attempts - 1:
                    # A writer merged these segments and removed their files, or a rebuild
                    # swapped the folder: start again from what is there now.
                    self._reconnect()
                    continue
                problem = f"{missing[0]} missing" if missing else f"cannot read: {e}"
                raise IncompatibleCollectionError(
                    f"damaged collection {self.directory.name!r}: {problem}",
                    "re-ingest into a new collection (-c NAME)",
                ) from None
            count = self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
            live = sum(s.live for s in segments)
            if live != count:
                raise IncompatibleCollectionError(
                    f"damaged collection {self.directory.name!r}: {live} vectors for "
                    f"{count} chunks",
                    "re-ingest into a new collection (-c NAME)",
                )
            return segments
        raise IncompatibleCollectionError(f"collection {self.directory.name!r} keeps changing")

    def _committed_segments(self) -> list[Segment]:
        """The segments table's rows, or the single vectors file of a collection made before
        segments (format 2, not yet opened by a writer)."""
        import numpy as np

        if self._state("layout") == "segments":
            return read_segments(self.db)
        generation = self.generation
        if not generation:
            return []
        count = self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        legacy = Segment(
            generation, f"vectors-{generation}.faiss", "float32", 0, LEGACY_LAST_ID, count
        )
        legacy.deleted = np.zeros(0, dtype=np.int64)
        return [legacy]

    def _reconnect(self) -> None:
        self.db.close()
        self.manifest = read_manifest(self.directory)
        self._connect()

    def _remove_stale(self) -> None:
        """Delete vector files no commit names: left by a writer that died before its commit,
        or after a merge's commit, before it removed the merged segments."""
        kept = {name for segment in read_segments(self.db) for name in segment.files()}
        for pattern in ("vectors-*.faiss*", "seg-*.faiss*"):
            for path in self.directory.glob(pattern):
                if path.name not in kept:
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
        vectors = sum(segment.live for segment in self.segments)
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
        if self.writable:
            return self._stored_chunks()
        return sum(segment.live for segment in self.segments)

    @property
    def dimension(self) -> int:
        return int(self.manifest["embedder"]["dimension"])

    @property
    def codec(self) -> str:
        return vector_kind(self.manifest)

    def describe_index(self) -> IndexDescription:
        """What kind of vector search the collection does, for ``ragcli status``."""
        return describe_segments(self.segments, self.codec)

    def dense(
        self, vector: np.ndarray, k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine) of the ``k`` nearest vectors, best first; with ``filters``, only
        among the chunks of the documents they allow."""
        import numpy as np

        segments = self.segments
        if k < 1 or not any(segment.live for segment in segments):
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        check_dimension(self.name, self.dimension, len(query))
        allowed = None
        if filters:
            where, args = self._document_filter(filters)
            rows = self._rows(
                "SELECT c.id FROM {chunks} c JOIN {documents} d ON d.id = c.document_id "
                f"WHERE {where} ORDER BY c.id",
                args,
            )
            allowed = np.asarray([r[0] for r in rows], np.int64)
        return search_segments(segments, query, k, allowed, self._quantizer)

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

        return vectors_of(self.segments, np.asarray(ids, dtype=np.int64), self.dimension)

    # -- writing -----------------------------------------------------------------------------

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
        self._segments = None
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
