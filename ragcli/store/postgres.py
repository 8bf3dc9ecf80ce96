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
import json
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ragcli.errors import (
    CollectionBusyError,
    CollectionNotFoundError,
)
from ragcli.records import Chunk
from ragcli.store.base import SqlStore
from ragcli.store.common import (
    IndexDescription,
    StoredDocument,
    check_dimension,
    check_format,
)

if TYPE_CHECKING:
    import numpy as np

    from ragcli.filters import Filters
from ragcli.store.postgres_db import (
    TEXT_SEARCH_CONFIG,
    add_metadata_columns,
    check_same,
    connect,
    guarded,
    has_metadata_columns,
    identifier,
    make_collection,
    redact,
    setup,
)

# Exact (sequential) search below this many chunks; the HNSW index from here on. A sequential
# scan took 11.7 ms for 2,334 384-dimensional chunks here (benchmarks/pgstore.py, busy 2-core
# machine), so about 25 ms at the switch; HNSW (ef_search 100) found the same top 10.
EXACT_BELOW = 5_000
# HNSW candidates kept while searching (pgvector's default is 40); at least k are kept.
EF_SEARCH = 100
# A filtered search that allows at most this many chunks is exact, as on the FAISS store.
# Above it, the HNSW index scans on until k chunks pass the filter (pgvector's iterative scan),
# visiting at most MAX_SCAN_TUPLES (pgvector's default), or more when the filter keeps few.
EXACT_FILTER_LIMIT = 20_000
MAX_SCAN_TUPLES = 20_000
# BM25 as SQLite FTS5 computes it, so both stores rank lexical matches alike.
BM25_K1 = 1.2
BM25_B = 0.75
# Advisory lock keys: (LOCK_CLASS, collection id) guards a collection as a whole (shared by
# writers, exclusive for rebuilds and drops); (collection id, hash of the path) one file.
LOCK_CLASS = 0x72616763  # "ragc"
_WORD = re.compile(r"[^\W_]+")


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


class PgStore(SqlStore):
    """One collection in a PostgreSQL database; the same methods as ``FaissStore``."""

    def __init__(
        self, url: str, name: str, writable: bool = False, exclusive: bool = False
    ) -> None:
        self.url = url
        self._name = name
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

    @property
    def name(self) -> str:
        return self._name

    @guarded
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
        self._front_matter, self._loader = has_metadata_columns(self.conn, self.id)
        if self.writable:
            self._lock(exclusive)
            upgrade = not (self._front_matter and self._loader)
            if upgrade and not exclusive:  # an exclusive writer adds no document
                add_metadata_columns(self.conn, self.id, self.name)
                self._front_matter = self._loader = True
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

    @guarded
    def _rows(self, query: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]:
        return list(self.conn.execute(self._sql(query), args).fetchall())

    @guarded
    def _execute(self, query: str, args: Sequence[Any] = ()) -> None:
        self.conn.execute(self._sql(query), args)

    @guarded
    def _insert(self, query: str, args: Sequence[Any]) -> int:
        return int(self.conn.execute(self._sql(query + " RETURNING id"), args).fetchone()[0])

    def _under(self, prefix: str) -> tuple[str, list[Any]]:
        return "starts_with(origin, %s)", [prefix]

    def _has_metadata(self) -> bool:
        return self._front_matter

    def _has_loader_columns(self) -> bool:
        return self._loader

    def _glob(self, glob: str) -> tuple[str, list[Any]]:
        return "d.source ~ %s", [_glob_regex(glob)]

    def _any_tag(self, tags: Sequence[str]) -> tuple[str, list[Any]]:
        return "d.tags::jsonb ?| %s::text[]", [list(tags)]

    def _stored_chunks(self) -> int:
        return int(self._chunks)

    def _index_problems(self, chunks: int) -> list[str]:
        vectors, lexical, words = self._rows(
            "SELECT count(embedding), count(lexemes), coalesce(sum(words), 0) FROM {chunks}"
        )[0]
        found = {"vectors": vectors, "lexical entries": lexical}
        problems = [f"{count} {what}" for what, count in found.items() if count != chunks]
        if int(words) != int(self._words):
            problems.append(f"{words} words counted as {self._words}")
        return problems

    @guarded
    def documents_of_file(self, file: str) -> list[StoredDocument]:
        """The documents of one file; a writer locks the file until its next commit."""
        if self.lock_files:
            self.conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (self.id, file))
        return super().documents_of_file(file)

    @property
    def chunk_count(self) -> int:
        return int(self._chunks)

    @property
    def updated_at(self) -> float | None:
        return self._updated

    @guarded
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

    @guarded
    def set_manifest_entry(self, key: str, value: Any) -> None:
        manifest = {k: v for k, v in self.manifest.items() if k != key}
        if value is not None:
            manifest[key] = value
        self.conn.execute(
            "UPDATE ragcli_collections SET manifest = %s WHERE id = %s",
            (json.dumps(manifest), self.id),
        )
        self.conn.commit()
        self.manifest = manifest

    def _set(self, name: str, value: str) -> None:
        self.conn.execute("SELECT set_config(%s, %s, true)", (name, value))

    def _filter(self, filters: Filters | None, column: str = "document_id") -> tuple[str, list]:
        """A condition that keeps the chunks of the documents the filters allow."""
        if not filters:
            return "true", []
        where, args = self._document_filter(filters)
        return f"{column} IN (SELECT d.id FROM {{documents}} d WHERE {where})", args

    @guarded
    def dense(
        self,
        vector: np.ndarray,
        k: int,
        filters: Filters | None = None,
        exact: bool | None = None,
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine) of the ``k`` nearest vectors, best first; with ``filters``,
        among the chunks of the documents they allow (in SQL, so k come back while k match).

        Exact while the collection is small, or the filter allows few chunks (``exact``
        None); else through the HNSW index, which under a filter scans on until it has k.
        """
        if self.chunk_count == 0 or k < 1:
            return []
        check_dimension(self.name, int(self.manifest["embedder"]["dimension"]), len(vector))
        where, args = self._filter(filters)
        allowed = self.chunk_count
        if exact is None:
            exact = self.chunk_count < EXACT_BELOW
            if filters and not exact:
                allowed = int(
                    self._rows(f"SELECT count(*) FROM {{chunks}} WHERE {where}", args)[0][0]
                )
                exact = allowed <= EXACT_FILTER_LIMIT
        self._set("enable_indexscan", "off" if exact else "on")
        if not exact:
            self._set("hnsw.ef_search", str(min(1000, max(EF_SEARCH, k))))
            self._set("hnsw.iterative_scan", "strict_order" if filters else "off")
            # enough visits to meet k allowed chunks four times over, on average
            wanted = 4 * k * self.chunk_count // max(allowed, 1)
            scan = min(max(self.chunk_count, MAX_SCAN_TUPLES), max(MAX_SCAN_TUPLES, wanted))
            self._set("hnsw.max_scan_tuples", str(scan))
        query = _vector_text(vector)
        rows = self._rows(
            f"SELECT id, 1 - (embedding <=> %s::vector) FROM {{chunks}} WHERE {where} "
            "ORDER BY embedding <=> %s::vector LIMIT %s",
            [query, *args, query, k],
        )
        return [(int(i), float(s)) for i, s in rows]

    @guarded
    def lexical(
        self, terms: Sequence[str], k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the ``k`` best chunks for any of the terms, best first;
        with ``filters``, among the chunks of the documents they allow.

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
        # Each lexeme's document frequency, all in one statement: the chunks holding any of
        # them come from the GIN index once, and each count filters those.
        counts = ", ".join(["count(*) FILTER (WHERE lexemes @@ %s::tsquery)"] * len(queries))
        found = self._rows(
            f"SELECT {counts} FROM {{chunks}} WHERE lexemes @@ %s::tsquery",
            [*queries, " | ".join(queries)],
        )[0]
        idf = []
        for frequency in found:
            value = math.log((total - int(frequency) + 0.5) / (int(frequency) + 0.5))
            idf.append(value if value > 0 else 1e-6)
        average = (self._words / total) if total else 1.0
        where, args = self._filter(filters, "c.document_id")
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

    @guarded
    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of some chunks, one row each."""
        import numpy as np

        dimension = int(self.manifest["embedder"]["dimension"])
        if not len(ids):
            return np.zeros((0, dimension), dtype=np.float32)
        wanted = [int(i) for i in ids]
        found = self._rows(
            "SELECT id, embedding::real[] FROM {chunks} WHERE id = ANY(%s)", (wanted,)
        )
        rows = {int(r[0]): r[1] for r in found}
        return np.asarray([rows[i] for i in wanted], dtype=np.float32)

    # -- writing -----------------------------------------------------------------------------

    def _write(self) -> None:
        if not self.writable:
            raise RuntimeError("collection opened read-only")
        self._dirty = True

    @guarded
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

    def _forget_chunks(self, where: str, args: Sequence[Any]) -> int:
        chunks, words = self._rows(
            "SELECT count(*), coalesce(sum(words), 0) FROM {chunks} WHERE document_id IN "
            f"(SELECT id FROM {{documents}} WHERE {where})",
            args,
        )[0]
        self._chunk_delta -= int(chunks)
        self._word_delta -= int(words)
        return int(chunks)

    @guarded
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

    def compact(self) -> None:
        """VACUUM the collection's tables, so the space of removed chunks is reused and the
        planner's statistics are fresh (PostgreSQL keeps no segments to merge)."""
        from psycopg import sql

        if self.conn.info.transaction_status:  # VACUUM runs outside a transaction
            self.conn.commit()
        self.conn.autocommit = True
        try:
            for table in (self.chunks_table, self.documents_table):
                self.conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(table))
        finally:
            self.conn.autocommit = False

    def checkpoint(self) -> None:
        """Nothing to fold: PostgreSQL keeps its own write-ahead log."""

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.rollback()
            with contextlib.suppress(Exception):
                self.conn.close()  # session advisory locks go with the session
            self.conn = None
