"""A collection in PostgreSQL: pgvector for the vectors, full text search for BM25.

Every collection is a row of ``ragcli_collections`` (name, manifest, generation, counts) and two
tables of its own, ``ragcli_<id>_documents`` and ``ragcli_<id>_chunks``; a chunk row holds the
text, a ``vector(dim)`` column under an HNSW index (cosine) and a ``tsvector`` column under a GIN
index. The server does the coordination:

- a commit is one transaction, so a killed ingester leaves what it committed and nothing else;
- every writer holds a shared advisory lock on the collection (a rebuild or a drop wants it
  exclusively), and each file an ingester looks at is locked until the transaction that
  writes it commits, so ingesters working on one collection at once never both write a file;
- ``documents.path`` is unique, so a document is never there twice.

Readers work on one ``REPEATABLE READ`` snapshot, as readers of the FAISS store do on one
generation. psycopg is imported here only, and only when a PostgreSQL store is used.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ragcli.errors import (
    CollectionBusyError,
    CollectionNotFoundError,
    StoreUnavailableError,
)
from ragcli.records import Chunk, Document, Hit
from ragcli.store.common import (
    DOCUMENT_INSERT_COLUMNS,
    IndexDescription,
    StoredDocument,
    check_dimension,
    check_format,
    document_row,
)

if TYPE_CHECKING:
    import numpy as np
from ragcli.store.postgres_db import (
    TEXT_SEARCH_CONFIG,
    check_same,
    connect,
    connect_error,
    drop_tables,
    first_line,
    identifier,
    make_collection,
    password_of,
    redact,
    setup,
)

# Exact (sequential) search below this many chunks; the HNSW index from here on. A sequential
# scan took 11.7 ms for 2,334 384-dimensional chunks here (benchmarks/pgstore.py, busy 2-core
# machine), so about 25 ms at the switch; HNSW (ef_search 100) found the same top 10.
EXACT_BELOW = 5_000
# HNSW candidates kept while searching (pgvector's default is 40); at least k are kept.
EF_SEARCH = 100
# BM25 as SQLite FTS5 computes it, so both stores rank lexical matches alike.
BM25_K1 = 1.2
BM25_B = 0.75
# Advisory lock keys: (LOCK_CLASS, collection id) guards a collection as a whole (shared by
# writers, exclusive for rebuilds and drops); (collection id, hash of the path) one file.
LOCK_CLASS = 0x72616763  # "ragc"
_WORD = re.compile(r"[^\W_]+")

_DOCUMENT_COLUMNS = "path, file, doc_id, source, sha256, size, mtime, chunks, root, origin"


_T = TypeVar("_T")


def _guarded(method: Callable[..., _T]) -> Callable[..., _T]:
    """Turn a lost connection or a deadlock in a store method into a ragcli error."""

    @functools.wraps(method)
    def wrapper(self: PgStore, *args: Any, **kwargs: Any) -> _T:
        import psycopg

        try:
            return method(self, *args, **kwargs)
        except psycopg.errors.DeadlockDetected as e:
            raise CollectionBusyError(
                f"collection {self.name!r}: another ingester is writing the same files "
                "(PostgreSQL broke a deadlock)",
                "run the command again; what was committed before stays",
            ) from e
        except psycopg.errors.OutOfMemory as e:  # 53200, most often the lock table
            raise StoreUnavailableError(
                f"PostgreSQL at {redact(self.url)} ran out of shared memory: "
                f"{first_line(e, password_of(self.url))}",
                "an ingest locks each file it writes until its next commit: commit more often "
                "(RAGCLI_COMMIT_EVERY=10) or raise max_locks_per_transaction on the server",
            ) from e
        except psycopg.OperationalError as e:
            raise StoreUnavailableError(
                f"lost the connection to PostgreSQL at {redact(self.url)}: "
                f"{first_line(e, password_of(self.url))}",
                "what was committed before stays; run the command again when the server is back",
            ) from e

    return wrapper


def _glob_regex(glob: str) -> str:
    """A POSIX regular expression matching what SQLite's GLOB matches (``*``, ``?``, ``[..]``)."""
    out, i = ["^"], 0
    while i < len(glob):
        c = glob[i]
        end = glob.find("]", i + 2) if c == "[" else -1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif end != -1:  # a set; [^...] negates in both languages
            out.append("[" + glob[i + 1 : end].replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out) + "$"


def _vector_text(vector: Any) -> str:
    import numpy as np

    return str(np.asarray(vector, dtype=np.float32).tolist())


# -- the collection ----------------------------------------------------------------------------


class PgStore:
    """One collection in a PostgreSQL database; the same methods as ``FaissStore``."""

    def __init__(
        self, url: str, name: str, writable: bool = False, exclusive: bool = False
    ) -> None:
        self.url = url
        self.name = name
        self.writable = writable
        self.lock_files = writable  # a rebuild's staging collection has no other writer
        self._dirty = False  # rows changed in the open transaction
        self._chunk_delta = 0
        self._word_delta = 0
        self.conn: Any = None
        self.conn = connect(url, autocommit=False)
        try:
            self._open(exclusive)
        except BaseException:
            self.close()
            raise

    @_guarded
    def _open(self, exclusive: bool) -> None:
        import psycopg

        if self.writable:
            setup(self.conn, self.url)
        else:
            self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            self.conn.read_only = True
        row = self._collection_row()
        if row is None:
            self.conn.rollback()
            raise CollectionNotFoundError(
                f"collection {self.name!r} does not exist in {redact(self.url)}",
                "run `ragcli ingest PATH` first",
            )
        self._load(row)
        if self.writable:
            self._lock(exclusive)
            self.conn.commit()

    def _collection_row(self) -> Any:
        try:
            return self.conn.execute(
                "SELECT id, manifest, generation, chunks, words, updated_at "
                "FROM ragcli_collections WHERE name = %s",
                (self.name,),
            ).fetchone()
        except Exception as e:
            import psycopg

            if isinstance(e, psycopg.errors.UndefinedTable):  # no ragcli table yet
                return None
            raise

    def _load(self, row: Any) -> None:
        self.id, manifest, self.generation, self._chunks, self._words, self._updated = row
        self.manifest: dict[str, Any] = dict(manifest)
        check_format(self.manifest, self.name, f"the manifest of {self.name!r}")
        self.documents_table = identifier(f"ragcli_{self.id}_documents")
        self.chunks_table = identifier(f"ragcli_{self.id}_chunks")

    def _lock(self, exclusive: bool) -> None:
        function = "pg_try_advisory_lock" if exclusive else "pg_try_advisory_lock_shared"
        got = self.conn.execute(f"SELECT {function}(%s, %s)", (LOCK_CLASS, self.id)).fetchone()[0]
        if not got:
            self.conn.rollback()
            doing = "being written" if exclusive else "being rebuilt or dropped"
            raise CollectionBusyError(
                f"collection {self.name!r} is {doing} by another ragcli process",
                "wait for it to finish, then run this one again",
            )

    @classmethod
    def create(cls, url: str, name: str, manifest: dict[str, Any]) -> PgStore:
        """Open the collection ``name`` for writing, making it (empty) if it does not exist.

        Several ingesters may start a new collection at once: the first makes it and the others
        find it, and each refuses one whose embedder or chunking differ from its own.
        """
        conn = connect(url, autocommit=False)
        try:
            make_collection(conn, url, name, manifest)
        finally:
            conn.close()
        store = cls(url, name, writable=True)
        try:
            check_same(store.manifest, manifest, name)
        except BaseException:
            store.close()
            raise
        return store

    # -- reading ---------------------------------------------------------------------------

    def _sql(self, query: str) -> Any:
        from psycopg import sql

        return sql.SQL(query).format(documents=self.documents_table, chunks=self.chunks_table)

    def _rows(self, query: str, args: Sequence[Any] = ()) -> list[Any]:
        return list(self.conn.execute(self._sql(query), args).fetchall())

    def _documents(self, where: str, args: Sequence[Any], order: str = "id") -> list[Any]:
        rows = self._rows(
            f"SELECT {_DOCUMENT_COLUMNS} FROM {{documents}} WHERE {where} ORDER BY {order}", args
        )
        return [
            StoredDocument(
                key=r[0],
                file=r[1],
                doc_id=r[2],
                source=r[3],
                sha256=r[4],
                size=r[5],
                mtime=r[6],
                chunks=r[7],
                root=r[8],
                origin=r[9],
            )  # fmt: skip
            for r in rows
        ]

    @_guarded
    def documents_of_file(self, file: str) -> list[StoredDocument]:
        """The documents of one file; a writer locks the file until its next commit."""
        if self.lock_files:
            self.conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (self.id, file))
        return self._documents("file = %s", (file,))

    @_guarded
    def documents(self) -> list[StoredDocument]:
        return self._documents("true", (), order="source")

    @_guarded
    def documents_from_folder(self, folder: str) -> list[StoredDocument]:
        """Documents found under ``folder`` (or a folder inside it) by an ingest of a folder."""
        prefix = folder.rstrip("/") + "/"
        return self._documents("starts_with(origin, %s)", (prefix,))

    @_guarded
    def ingest_arguments(self) -> list[str]:
        """What to read again to rebuild the collection: its folders, then its loose files."""
        folders = self._rows(
            "SELECT DISTINCT root FROM {documents} WHERE root IS NOT NULL ORDER BY 1"
        )
        files = self._rows("SELECT DISTINCT file FROM {documents} WHERE root IS NULL ORDER BY 1")
        return [r[0] for r in folders] + [r[0] for r in files]

    @_guarded
    def document_details(self) -> list[dict[str, Any]]:
        """Every document with its size, chunk count and when it was ingested, by source."""
        names = "source path file doc_id format title chunks size mtime ingested_at".split()
        rows = self._rows(f"SELECT {', '.join(names)} FROM {{documents}} ORDER BY source")
        return [dict(zip(names, r)) for r in rows]

    @_guarded
    def counts(self) -> dict[str, int]:
        """Documents, distinct files and chunks."""
        documents, files = self._rows("SELECT count(*), count(DISTINCT file) FROM {documents}")[0]
        return {"documents": documents, "files": files, "chunks": int(self._chunks)}

    @property
    def chunk_count(self) -> int:
        return int(self._chunks)

    @_guarded
    def sample_texts(self, count: int) -> list[str]:
        """Up to ``count`` chunk texts spread over the collection."""
        total = self._rows("SELECT coalesce(max(id), 0) FROM {chunks}")[0][0]
        step = max(1, int(total) // max(1, count))
        rows = self._rows(
            "SELECT text FROM {chunks} WHERE id %% %s = 0 ORDER BY id LIMIT %s", (step, count)
        )
        return [r[0] for r in rows]

    @property
    def updated_at(self) -> float | None:
        return self._updated

    @_guarded
    def disk_bytes(self) -> int:
        """Bytes the collection's tables and indexes take in the database."""
        from psycopg import sql

        total = 0
        for table in (self.documents_table, self.chunks_table):
            query = sql.SQL("SELECT pg_total_relation_size({})").format(
                sql.Literal(table.as_string(self.conn))
            )
            total += int(self.conn.execute(query).fetchone()[0] or 0)
        return total

    def describe_index(self) -> IndexDescription:
        """What kind of search the collection does, for ``ragcli status``."""
        if self.chunk_count < EXACT_BELOW:
            kind = "pgvector sequential scan"
            return IndexDescription("exact", kind, f"exact ({kind})")
        summary = f"approximate (pgvector HNSW, ef_search {EF_SEARCH})"
        return IndexDescription("approximate", "HNSW", summary, ef_search=EF_SEARCH)

    def _set(self, name: str, value: str) -> None:
        self.conn.execute("SELECT set_config(%s, %s, true)", (name, value))

    def _filter(self, source_glob: str | None, column: str = "document_id") -> tuple[str, list]:
        """A condition that keeps the chunks of documents whose source matches the glob."""
        if source_glob is None:
            return "true", []
        condition = f"{column} IN (SELECT id FROM {{documents}} WHERE source ~ %s)"
        return condition, [_glob_regex(source_glob)]

    @_guarded
    def dense(
        self, vector: np.ndarray, k: int, source_glob: str | None = None, exact: bool | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine) of the ``k`` nearest vectors, best first.

        Exact while the collection is small (``exact`` None), through the HNSW index after.
        """
        if self.chunk_count == 0 or k < 1:
            return []
        check_dimension(self.name, int(self.manifest["embedder"]["dimension"]), len(vector))
        if exact is None:
            exact = self.chunk_count < EXACT_BELOW
        self._set("enable_indexscan", "off" if exact else "on")
        if not exact:
            self._set("hnsw.ef_search", str(min(1000, max(EF_SEARCH, k))))
            self._set("hnsw.iterative_scan", "strict_order" if source_glob else "off")
        where, args = self._filter(source_glob)
        query = _vector_text(vector)
        rows = self._rows(
            f"SELECT id, 1 - (embedding <=> %s::vector) FROM {{chunks}} WHERE {where} "
            "ORDER BY embedding <=> %s::vector LIMIT %s",
            [query, *args, query, k],
        )
        return [(int(i), float(s)) for i, s in rows]

    @_guarded
    def lexical(
        self, terms: Sequence[str], k: int, source_glob: str | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the ``k`` best chunks for any of the terms, best first.

        The chunks come from the GIN index; the score is Okapi BM25 as SQLite FTS5 computes it
        (k1 1.2, b 0.75, idf floored at 1e-6), over the stemmed lexemes.
        """
        import math

        if not terms or k < 1 or self.chunk_count == 0:
            return []
        lexemes = [
            r[0]
            for r in self.conn.execute(
                "SELECT DISTINCT lexeme FROM unnest(to_tsvector(%s::regconfig, %s)) ORDER BY 1",
                (TEXT_SEARCH_CONFIG, " ".join(terms)),
            )
        ]
        if not lexemes:
            return []
        queries = [
            "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'" for lexeme in lexemes
        ]
        total = self.chunk_count
        idf = []
        for query in queries:
            found = self._rows(
                "SELECT count(*) FROM {chunks} WHERE lexemes @@ %s::tsquery", (query,)
            )[0][0]
            value = math.log((total - found + 0.5) / (found + 0.5))
            idf.append(value if value > 0 else 1e-6)
        average = (self._words / total) if total else 1.0
        where, args = self._filter(source_glob, "c.document_id")
        rows = self._rows(
            "SELECT c.id, sum(w.idf * t.tf * %s / (t.tf + %s * (1 - %s + %s * c.words / %s))) "
            "AS score FROM {chunks} c "
            "CROSS JOIN LATERAL (SELECT u.lexeme, cardinality(u.positions) AS tf "
            "FROM unnest(c.lexemes) u) t "
            "JOIN unnest(%s::text[], %s::float8[]) AS w(lexeme, idf) ON w.lexeme = t.lexeme "
            f"WHERE c.lexemes @@ %s::tsquery AND {where} "
            "GROUP BY c.id ORDER BY score DESC, c.id LIMIT %s",
            [
                BM25_K1 + 1,
                BM25_K1,
                BM25_B,
                BM25_B,
                max(average, 1e-9),
                lexemes,
                idf,
                " | ".join(queries),
                *args,
                k,
            ],  # fmt: skip
        )
        return [(int(i), float(s)) for i, s in rows]

    @_guarded
    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of some chunks, one row each."""
        import numpy as np

        dimension = int(self.manifest["embedder"]["dimension"])
        if not len(ids):
            return np.zeros((0, dimension), dtype=np.float32)
        wanted = [int(i) for i in ids]
        rows = dict(
            self._rows("SELECT id, embedding::real[] FROM {chunks} WHERE id = ANY(%s)", (wanted,))
        )
        return np.asarray([rows[i] for i in wanted], dtype=np.float32)

    @_guarded
    def hits(self, scored: Sequence[tuple[int, float]]) -> list[Hit]:
        """Hits for (chunk id, score) pairs, in the given order."""
        ids = [int(i) for i, _ in scored]
        found = {
            r[0]: r
            for r in self._rows(
                "SELECT c.id, c.key, c.ordinal, c.text, c.page, c.line_start, c.line_end, "
                "c.heading, d.source, d.doc_id FROM {chunks} c JOIN {documents} d "
                "ON d.id = c.document_id WHERE c.id = ANY(%s)",
                (ids,),
            )
        }
        hits: list[Hit] = []
        for chunk_id, score in scored:
            r = found.get(int(chunk_id))
            if r is None:
                continue
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
                )  # fmt: skip
            )
        return hits

    # -- writing -----------------------------------------------------------------------------

    def _write(self) -> None:
        if not self.writable:
            raise RuntimeError("collection opened read-only")
        self._dirty = True

    @_guarded
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
        row = self._rows(
            f"INSERT INTO {{documents}} ({DOCUMENT_INSERT_COLUMNS}) "
            f"VALUES ({', '.join(['%s'] * len(values))}) RETURNING id",
            values,
        )
        return int(row[0][0])

    @_guarded
    def add_chunks(self, document_id: int, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Record some of a document's chunks with their vectors (one COPY)."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        self._write()
        if not chunks:
            return
        words = [len(_WORD.findall(c.text)) for c in chunks]
        copy = self._sql(
            "COPY {chunks} (document_id, key, ordinal, text, n_tokens, page, line_start, "
            "line_end, heading, words, embedding) FROM STDIN"
        )
        with self.conn.cursor() as cursor, cursor.copy(copy) as pipe:
            for chunk, vector, count in zip(chunks, vectors, words):
                pipe.write_row(
                    (
                        document_id,
                        chunk.key,
                        chunk.ordinal,
                        chunk.text,
                        chunk.n_tokens,
                        chunk.page,
                        chunk.line_start,
                        chunk.line_end,
                        chunk.heading,
                        count,
                        _vector_text(vector),
                    )  # fmt: skip
                )
        self._chunk_delta += len(chunks)
        self._word_delta += sum(words)

    @_guarded
    def touch_file(self, file: str, mtime: float) -> None:
        """Remember a new mtime for a file whose content did not change."""
        self._write()
        self.conn.execute(
            self._sql("UPDATE {documents} SET mtime = %s WHERE file = %s"), (mtime, file)
        )

    @_guarded
    def set_origin(self, file: str, root: str | None, origin: str | None) -> None:
        """Remember the folder argument (and path under it) a file was found through."""
        self._write()
        self.conn.execute(
            self._sql("UPDATE {documents} SET root = %s, origin = %s WHERE file = %s"),
            (root, origin, file),
        )

    def delete_file(self, file: str) -> int:
        """Remove every document of a file with its chunks; returns how many chunks went."""
        return self._delete("file = %s", (file,))

    def delete_documents(self, keys: Iterable[str]) -> int:
        """Remove documents by key (their path, or ``file#id``); returns how many chunks went."""
        return sum(self._delete("path = %s", (key,)) for key in keys)

    @_guarded
    def _delete(self, where: str, args: tuple[Any, ...]) -> int:
        self._write()
        chunks, words = self._rows(
            "SELECT count(*), coalesce(sum(words), 0) FROM {chunks} WHERE document_id IN "
            f"(SELECT id FROM {{documents}} WHERE {where})",
            args,
        )[0]
        # Chunks go with their documents (ON DELETE CASCADE), index entries with the rows.
        self.conn.execute(self._sql(f"DELETE FROM {{documents}} WHERE {where}"), args)
        self._chunk_delta -= int(chunks)
        self._word_delta -= int(words)
        return int(chunks)

    @_guarded
    def save(self) -> None:
        """Commit: the rows, the counts and a new generation in one transaction.

        Also ends the transaction of a writer that changed nothing, releasing its file locks.
        """
        if self._dirty:
            changed = self._chunk_delta != 0 or self._word_delta != 0
            row = self.conn.execute(
                "UPDATE ragcli_collections SET generation = generation + %s, "
                "chunks = chunks + %s, words = words + %s, updated_at = %s WHERE id = %s "
                "RETURNING generation, chunks, words, updated_at",
                (int(changed), self._chunk_delta, self._word_delta, time.time(), self.id),
            ).fetchone()
            self.generation, self._chunks, self._words, self._updated = row
        self.conn.commit()
        self._dirty = False
        self._chunk_delta = self._word_delta = 0

    def rollback(self) -> None:
        """Drop pending changes."""
        with contextlib.suppress(Exception):
            self.conn.rollback()
        self._dirty = False
        self._chunk_delta = self._word_delta = 0

    def checkpoint(self) -> None:
        """Nothing to fold: PostgreSQL keeps its own write-ahead log."""

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.rollback()
            with contextlib.suppress(Exception):
                self.conn.close()  # session advisory locks go with the session
            self.conn = None

    def __enter__(self) -> PgStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- whole collections -------------------------------------------------------------------------


def staging_name(name: str) -> str:
    """Where ``ingest --rebuild`` builds the collection that replaces ``name``."""
    return f".{name}.rebuild"


def read_manifest(url: str, name: str) -> dict[str, Any]:
    """A collection's manifest (its row); CollectionNotFoundError when there is none."""
    with contextlib.closing(PgStore(url, name)) as store:
        return store.manifest


def collection_exists(url: str, name: str) -> bool:
    """Whether the database holds the collection."""
    import psycopg

    conn = connect(url, autocommit=True)
    try:
        row = conn.execute("SELECT 1 FROM ragcli_collections WHERE name = %s", (name,)).fetchone()
        return row is not None
    except psycopg.errors.UndefinedTable:
        return False
    except psycopg.OperationalError as e:
        raise connect_error(e, url) from None
    finally:
        conn.close()


def collection_names(url: str) -> list[str]:
    """The collections the database holds (not rebuilds in progress)."""
    import psycopg

    conn = connect(url, autocommit=True)
    try:
        rows = conn.execute(
            "SELECT name FROM ragcli_collections WHERE name NOT LIKE '.%%' ORDER BY name"
        ).fetchall()
        return [r[0] for r in rows]
    except psycopg.errors.UndefinedTable:
        return []
    finally:
        conn.close()


def discard_if_empty(url: str, name: str) -> None:
    """Delete a collection that never got a commit, unless another writer is at it."""
    with contextlib.suppress(CollectionBusyError, CollectionNotFoundError, StoreUnavailableError):
        store = PgStore(url, name, writable=True, exclusive=True)
        try:
            if store.generation == 0:
                _drop(store)
        finally:
            store.close()


def discard_staging(url: str, name: str) -> None:
    """Delete what a rebuild that died left behind."""
    with contextlib.suppress(CollectionNotFoundError, CollectionBusyError):
        store = PgStore(url, staging_name(name), writable=True, exclusive=True)
        try:
            _drop(store)
        finally:
            store.close()


def create_staging(url: str, name: str, manifest: dict[str, Any], generation: int) -> PgStore:
    """A new collection for a rebuild; its generations continue ``generation``."""
    discard_staging(url, name)
    staged = staging_name(name)
    store = PgStore.create(url, staged, manifest)
    try:
        store.conn.execute(
            "UPDATE ragcli_collections SET generation = %s WHERE id = %s", (generation, store.id)
        )
        store.conn.commit()
        store.generation = generation
        # One transaction holds the whole rebuild: per-file locks would pile up in it, and
        # the staging collection is invisible to other ingesters.
        store.lock_files = False
    except BaseException:
        store.close()
        raise
    return store


@_guarded
def _publish(new: PgStore, old: PgStore) -> None:
    conn = new.conn
    with conn.transaction():
        drop_tables(conn, old.id)
        conn.execute("DELETE FROM ragcli_collections WHERE id = %s", (old.id,))
        conn.execute("UPDATE ragcli_collections SET name = %s WHERE id = %s", (old.name, new.id))


def publish_staging(new: PgStore, old: PgStore) -> None:
    """Put a rebuilt collection in the place of the old one, in one transaction."""
    old.rollback()  # the old writer's snapshot must not hold its tables while they go
    try:
        _publish(new, old)
    finally:
        new.close()


@_guarded
def _drop(store: PgStore) -> None:
    conn = store.conn
    with conn.transaction():
        drop_tables(conn, store.id)
        conn.execute("DELETE FROM ragcli_collections WHERE id = %s", (store.id,))


def drop_collection(url: str, name: str) -> None:
    """Delete a collection, unless a writer holds it."""
    store = PgStore(url, name, writable=True, exclusive=True)
    try:
        _drop(store)
    finally:
        store.close()
    discard_staging(url, name)
