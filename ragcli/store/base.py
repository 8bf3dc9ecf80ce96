"""What both stores keep in SQL, written once: documents, chunks, hits, deletes, the check.

Both stores hold a ``documents`` and a ``chunks`` table with the same columns (SQLite in a
collection's folder, PostgreSQL for a database collection). ``SqlStore`` reads and writes them
with one set of queries, written with ``%s`` placeholders and ``{documents}``/``{chunks}`` for
the table names; each store runs them through its own ``_rows``/``_execute`` and keeps what
differs: where the vectors live, the lexical index, transactions and locks.
"""

from __future__ import annotations

import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from ragcli.errors import IncompatibleCollectionError
from ragcli.records import Chunk, Document, Hit
from ragcli.store.common import DOCUMENT_INSERT_COLUMNS, StoredDocument, document_row

if TYPE_CHECKING:
    import numpy as np

    from ragcli.filters import Filters

# The columns of a ``StoredDocument``, in its order.
STORED_DOCUMENT_COLUMNS = "path, file, doc_id, source, sha256, size, mtime, chunks, root, origin"
# What ``document_details`` reports of each document.
DETAIL_COLUMNS = "source path file doc_id format title chunks size mtime ingested_at".split()
# ... and what the loader said of it, in a collection that has those columns.
LOADER_COLUMNS = "pages ocr_pages warnings".split()
_HIT_COLUMNS = (
    "c.id, c.key, c.ordinal, c.text, c.page, c.line_start, c.line_end, c.heading, "
    "d.source, d.doc_id, d.format"
)
_S = TypeVar("_S", bound="SqlStore")
# Chunk ids per ``IN (...)`` list when hits are read.
_BATCH = 500


class SqlStore(ABC):
    """An open collection's SQL side; ``FaissStore`` and ``PgStore`` build on it."""

    manifest: dict[str, Any]
    writable: bool
    # What a writer calls, when the store is about to wait for another writer, to commit what
    # it has first (an ingest sets it); None: wait as it is. Only a database store waits.
    before_waiting: Callable[[], None] | None = None

    def snapshot(self) -> AbstractContextManager[object]:
        """One consistent view of the collection for the reads inside the block (a request's
        several reads). A folder reader keeps one SQLite snapshot for its whole life anyway."""
        return contextlib.nullcontext()

    # -- what each store provides ------------------------------------------------------------

    @property
    @abstractmethod
    def name(self) -> str:
        """The collection's name, for messages."""

    @abstractmethod
    def _rows(self, query: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]:
        """Run a query (``%s`` placeholders, ``{documents}``/``{chunks}``) and fetch its rows."""

    @abstractmethod
    def _execute(self, query: str, args: Sequence[Any] = ()) -> None:
        """Run a statement that returns no rows."""

    @abstractmethod
    def _insert(self, query: str, args: Sequence[Any]) -> int:
        """Run an ``INSERT`` of one row and return its id."""

    @abstractmethod
    def _write(self) -> None:
        """Start (or continue) the write transaction; refuse on a read-only store."""

    @abstractmethod
    def _forget_chunks(self, where: str, args: Sequence[Any]) -> int:
        """Before the documents matching ``where`` are deleted: drop their chunks' vectors
        and counts outside the two tables; returns how many chunks go."""

    @abstractmethod
    def _stored_chunks(self) -> int:
        """How many chunks the metadata holds, without loading any vectors."""

    @abstractmethod
    def _index_problems(self, chunks: int) -> list[str]:
        """Where the store's indexes disagree with the ``chunks`` rows (``check``)."""

    @abstractmethod
    def _under(self, prefix: str) -> tuple[str, list[Any]]:
        """A condition on ``origin`` that keeps the paths starting with ``prefix``."""

    @abstractmethod
    def _glob(self, glob: str) -> tuple[str, list[Any]]:
        """A condition on documents ``d`` that keeps the sources matching a glob."""

    @abstractmethod
    def _any_tag(self, tags: Sequence[str]) -> tuple[str, list[Any]]:
        """A condition on documents ``d`` that keeps those with any of the tags."""

    @abstractmethod
    def dense(
        self, vector: np.ndarray, k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine) of the ``k`` nearest vectors, best first; with ``filters``, of
        the chunks of the documents they allow (searched among those only)."""

    @abstractmethod
    def lexical(
        self, terms: Sequence[str], k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the ``k`` best chunks for any of the terms, best first;
        with ``filters``, among the chunks of the documents they allow."""

    @abstractmethod
    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of some chunks, one row each."""

    @abstractmethod
    def add_chunks(self, document_id: int, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Record some of a document's chunks with their vectors, in order."""

    @abstractmethod
    def save(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None: ...

    @abstractmethod
    def compact(self) -> None:
        """Give back the space removed chunks still take (a writer, nothing pending)."""

    @abstractmethod
    def close(self) -> None: ...

    def _root(self) -> str:
        """The column of the folder a document was found in (a version-1 collection lacks it)."""
        return "root"

    def _document_columns(self) -> str:
        return STORED_DOCUMENT_COLUMNS

    def _has_metadata(self) -> bool:
        """Whether the documents table has the front matter's columns (``date``, ``tags``; a
        collection made before them lacks them until its next writer)."""
        return True

    def _has_loader_columns(self) -> bool:
        """Whether the documents table has the loader's columns (``pages``, ``ocr_pages``,
        ``warnings``; the same)."""
        return True

    # -- filters -----------------------------------------------------------------------------

    def _document_filter(self, filters: Filters) -> tuple[str, list[Any]]:
        """A condition on documents ``d`` that keeps the documents ``filters`` allow.

        A document's date is its front matter's, else its file's mtime; without the
        ``date``/``tags`` columns, the mtime, and no document has a tag.
        """
        conditions: list[str] = []
        args: list[Any] = []
        if filters.source_glob is not None:
            condition, values = self._glob(filters.source_glob)
            conditions.append(condition)
            args += values
        when = "coalesce(d.date, d.mtime)" if self._has_metadata() else "d.mtime"
        if filters.after is not None:
            conditions.append(f"{when} >= %s")
            args.append(filters.after)
        if filters.before is not None:
            conditions.append(f"{when} < %s")
            args.append(filters.before)
        if filters.formats:
            conditions.append(f"d.format IN ({', '.join(['%s'] * len(filters.formats))})")
            args += filters.formats
        if filters.tags:
            if self._has_metadata():
                condition, values = self._any_tag(filters.tags)
                conditions.append(condition)
                args += values
            else:
                conditions.append("1 = 0")
        return " AND ".join(f"({c})" for c in conditions) or "1 = 1", args

    def matching_documents(self, filters: Filters) -> int:
        """How many documents the filters allow (a cheap check before searching)."""
        where, args = self._document_filter(filters)
        return int(self._rows(f"SELECT count(*) FROM {{documents}} d WHERE {where}", args)[0][0])

    # -- reading -----------------------------------------------------------------------------

    def _documents(
        self, where: str, args: Sequence[Any], order: str = "id"
    ) -> list[StoredDocument]:
        columns = self._document_columns()
        rows = self._rows(
            f"SELECT {columns} FROM {{documents}} WHERE {where} ORDER BY {order}", args
        )
        return [StoredDocument(*r) for r in rows]

    def documents_of_file(self, file: str) -> list[StoredDocument]:
        """The documents of one file."""
        return self._documents("file = %s", (file,))

    def documents(self) -> list[StoredDocument]:
        """Every document, by source."""
        return self._documents("1 = 1", (), order="source")

    def documents_from_folder(self, folder: str) -> list[StoredDocument]:
        """Documents found under ``folder`` (or a folder inside it) by an ingest of a folder."""
        condition, args = self._under(folder.rstrip("/") + "/")
        return self._documents(condition, args)

    def ingest_arguments(self) -> list[str]:
        """What to read again to rebuild the collection: its folders, then its loose files."""
        root = self._root()
        folders = self._rows(
            f"SELECT DISTINCT {root} FROM {{documents}} WHERE {root} IS NOT NULL ORDER BY 1"
        )
        files = self._rows(
            f"SELECT DISTINCT file FROM {{documents}} WHERE {root} IS NULL ORDER BY 1"
        )
        return [r[0] for r in folders] + [r[0] for r in files]

    def document_details(self) -> list[dict[str, Any]]:
        """Every document with its size, chunk count and when it was ingested, by source."""
        columns = DETAIL_COLUMNS + (LOADER_COLUMNS if self._has_loader_columns() else [])
        rows = self._rows(f"SELECT {', '.join(columns)} FROM {{documents}} ORDER BY source")
        return [dict(zip(columns, r)) for r in rows]

    def counts(self) -> dict[str, int]:
        """Documents, distinct files and chunks, from the metadata alone; and the files read
        with warnings, and those with pages read by OCR."""
        documents, files = self._rows("SELECT count(*), count(DISTINCT file) FROM {documents}")[0]
        warned = ocr = 0
        if self._has_loader_columns():
            warned, ocr = self._rows(
                "SELECT count(DISTINCT CASE WHEN warnings IS NOT NULL THEN file END), "
                "count(DISTINCT CASE WHEN ocr_pages IS NOT NULL THEN file END) FROM {documents}"
            )[0]
        return {
            "documents": int(documents),
            "files": int(files),
            "chunks": self._stored_chunks(),
            "files_with_warnings": int(warned),
            "files_with_ocr": int(ocr),
        }

    def sample_texts(self, count: int) -> list[str]:
        """Up to ``count`` chunk texts spread over the collection, from the metadata alone."""
        total = self._rows("SELECT coalesce(max(id), 0) FROM {chunks}")[0][0]
        step = max(1, int(total) // max(1, count))
        rows = self._rows(
            "SELECT text FROM {chunks} WHERE id %% %s = 0 ORDER BY id LIMIT %s", (step, count)
        )
        return [r[0] for r in rows]

    def sample_chunks(self, count: int, offset: int = 0) -> list[Hit]:
        """Up to ``count`` chunks spread evenly over the collection (``offset`` shifts them)."""
        total = int(self._rows("SELECT coalesce(max(id), 0) FROM {chunks}")[0][0])
        step = max(1, total // max(1, count))
        rows = self._rows(
            "SELECT id FROM {chunks} WHERE id %% %s = %s ORDER BY id LIMIT %s",
            (step, offset % step, count),
        )
        return self.hits([(int(r[0]), 0.0) for r in rows])

    def hits(self, scored: Sequence[tuple[int, float]]) -> list[Hit]:
        """Hits for (chunk id, score) pairs, in the given order."""
        ids = [int(i) for i, _ in scored]
        found: dict[int, Sequence[Any]] = {}
        ocr = "d.ocr_pages" if self._has_loader_columns() else "NULL"
        for start in range(0, len(ids), _BATCH):
            batch = ids[start : start + _BATCH]
            for r in self._rows(
                f"SELECT {_HIT_COLUMNS}, {ocr} FROM {{chunks}} c JOIN {{documents}} d "
                f"ON d.id = c.document_id WHERE c.id IN ({', '.join(['%s'] * len(batch))})",
                batch,
            ):
                found[int(r[0])] = r
        hits: list[Hit] = []
        for chunk_id, score in scored:
            if int(chunk_id) not in found:
                continue
            r = found[int(chunk_id)]
            hits.append(
                Hit(
                    rank=len(hits) + 1,
                    score=score,
                    text=r[3],
                    source=r[8],
                    chunk_key=r[1],
                    page=r[4],
                    line_start=r[5],
                    line_end=r[6],
                    heading=r[7],
                    doc_id=r[9],
                    ordinal=r[2],
                    row_id=int(chunk_id),
                    format=r[10],
                    ocr=_read_by_ocr(r[11], r[4]),
                )  # fmt: skip
            )
        return hits

    def passage(self, chunk_key: str) -> Hit | None:
        """The chunk with this key (a hit's ``chunk_id``), or None."""
        rows = self._rows("SELECT id FROM {chunks} WHERE key = %s LIMIT 1", (chunk_key,))
        return self.hits([(int(rows[0][0]), 0.0)])[0] if rows else None

    def document_passages(self, doc_id: str) -> list[Hit]:
        """Every chunk of the document with this ``doc_id``, in document order."""
        rows = self._rows(
            "SELECT c.id FROM {chunks} c JOIN {documents} d ON d.id = c.document_id "
            "WHERE d.doc_id = %s ORDER BY d.id, c.ordinal",
            (doc_id,),
        )
        return self.hits([(int(r[0]), 0.0) for r in rows])

    def files_of_chunks(self, ids: Sequence[int]) -> dict[int, tuple[str, int, float]]:
        """Each chunk's file with the size and mtime it had when ingested, by chunk id."""
        found: dict[int, tuple[str, int, float]] = {}
        unique = sorted({int(i) for i in ids})
        for start in range(0, len(unique), _BATCH):
            batch = unique[start : start + _BATCH]
            for chunk_id, file, size, mtime in self._rows(
                "SELECT c.id, d.file, d.size, d.mtime FROM {chunks} c JOIN {documents} d "
                f"ON d.id = c.document_id WHERE c.id IN ({', '.join(['%s'] * len(batch))})",
                batch,
            ):
                found[int(chunk_id)] = (file, int(size), float(mtime))
        return found

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        """The ``k`` chunks whose vectors are nearest ``vector``."""
        return self.hits(self.dense(vector, k))

    # -- writing -----------------------------------------------------------------------------

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
        self._write()
        values = document_row(document, chunk_count, root, origin)
        return self._insert(
            f"INSERT INTO {{documents}} ({DOCUMENT_INSERT_COLUMNS}) "
            f"VALUES ({', '.join(['%s'] * len(values))})",
            values,
        )

    def touch_file(self, file: str, mtime: float) -> None:
        """Remember a new mtime for a file whose content did not change."""
        self._write()
        self._execute("UPDATE {documents} SET mtime = %s WHERE file = %s", (mtime, file))

    @abstractmethod
    def set_manifest_entry(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` in the manifest at once (None removes the key)."""

    def set_origin(self, file: str, root: str | None, origin: str | None) -> None:
        """Remember the folder argument (and path under it) a file was found through."""
        self._write()
        self._execute(
            "UPDATE {documents} SET root = %s, origin = %s WHERE file = %s", (root, origin, file)
        )

    def delete_file(self, file: str) -> int:
        """Remove every document of a file with its chunks; returns how many chunks went."""
        return self._delete("file = %s", (file,))

    def delete_documents(self, keys: Iterable[str]) -> int:
        """Remove documents by key (their path, or ``file#id``); returns how many chunks went."""
        return sum(self._delete("path = %s", (key,)) for key in keys)

    def _delete(self, where: str, args: Sequence[Any]) -> int:
        self._write()
        removed = self._forget_chunks(where, args)
        # Chunks go with their documents (ON DELETE CASCADE), lexical entries with the chunks.
        self._execute(f"DELETE FROM {{documents}} WHERE {where}", args)
        return removed

    # -- checking ----------------------------------------------------------------------------

    def check(self) -> int:
        """Check that vectors, chunks, lexical entries and counts agree and that no document
        or chunk is there twice; returns the chunk count, or raises what is wrong."""
        chunks = int(self._rows("SELECT count(*) FROM {chunks}")[0][0])
        declared = int(self._rows("SELECT coalesce(sum(chunks), 0) FROM {documents}")[0][0])
        twice = self._rows(
            "SELECT count(*) FROM (SELECT 1 FROM {chunks} GROUP BY document_id, ordinal "
            "HAVING count(*) > 1) t"
        )[0][0]
        found = {"chunks": chunks, "chunks the documents declare": declared}
        found["chunks counted"] = self._stored_chunks()
        problems = [f"{count} {what}" for what, count in found.items() if count != chunks]
        problems += self._index_problems(chunks)
        if twice:
            problems.append(f"{twice} chunks stored twice")
        if problems:
            raise IncompatibleCollectionError(
                f"damaged collection {self.name!r}: {chunks} chunks but " + ", ".join(problems),
                "re-ingest into a new collection (-c NAME)",
            )
        return chunks

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_by_ocr(ocr_pages: str | None, page: int | None) -> bool:
    """Whether a chunk on ``page`` was read by OCR, from its document's ``ocr_pages``."""
    if not ocr_pages:
        return False
    return (page or 1) in json.loads(ocr_pages)
