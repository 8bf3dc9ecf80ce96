"""A collection in PostgreSQL: pgvector for the vectors, full text search for BM25.

Every collection is a row of ``ragcli_collections`` (name, manifest, generation, counts) and two
tables of its own, ``ragcli_<id>_documents`` and ``ragcli_<id>_chunks``; a chunk row holds the
text, its vector and a ``tsvector`` column under a GIN index. The manifest's ``vectors`` says
how the vector is kept: "float32", a ``vector(dim)`` column under an HNSW index (cosine);
"int8", a ``halfvec(dim)`` (pgvector's compressed type, 2 bytes a dimension) under an HNSW index
(cosine); "binary", a ``halfvec(dim)`` with the HNSW index on its sign bits (Hamming distance),
whose candidates are rescored by cosine on the halfvecs. Every kind returns cosines; an exact
search (a small collection, a narrow filter) computes them on all the stored vectors, any other
goes through the HNSW index (the planner is kept from sorting instead).

The server does the coordination:

- a commit is one transaction, so a killed ingester leaves what it committed and nothing else;
- every writer holds a shared advisory lock on the collection (a rebuild or a drop wants it
  exclusively), and each file a writer looks at or changes is locked until the transaction
  that writes it commits, so writers working on one collection at once never both write a file;
- a writer that finds a file locked by another while it holds file locks of its own first
  commits what it has (``before_waiting``, which an ingest sets), so it never waits while
  holding a lock: two ingesters meeting the same files in another order do not deadlock;
- ``documents.path`` is unique, so a document is never there twice.

A reader holds no transaction between reads. Each read, or each ``snapshot()`` block (one
search's several reads), is one short ``REPEATABLE READ`` transaction that first reads the
collection's row again: it sees the last commit, follows a rebuild to the new tables, and holds
up a rebuild's or a drop's ``DROP TABLE`` for no longer than a read. psycopg is imported here
only, and only when a PostgreSQL store is used.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ragcli.errors import (
    CollectionBusyError,
    CollectionNotFoundError,
)
from ragcli.records import Chunk, Document
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
    bits,
    check_kind,
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
# A "binary" collection's HNSW index (Hamming distance on sign bits) gives this many candidates
# per result wanted, at least RESCORE_MIN (twice that under a filter), rescored by cosine.
RESCORE_FACTOR = 10
RESCORE_MIN = 100
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
# Times a read looks the collection up again when its tables went (a rebuild) meanwhile.
_LOOKUPS = 5
_WORD = re.compile(r"[^\W_]+")
_R = TypeVar("_R")


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


def _one_read(method: Callable[..., _R]) -> Callable[..., _R]:
    """A read method of ``PgStore`` run in one snapshot (one transaction for a reader)."""

    @functools.wraps(method)
    def wrapper(self: PgStore, *args: Any, **kwargs: Any) -> _R:
        with self.snapshot():
            return method(self, *args, **kwargs)

    return wrapper


# -- the collection ----------------------------------------------------------------------------


class PgStore(SqlStore):
    """One collection in a PostgreSQL database; the same methods as ``FaissStore``.

    ``chunk_count``, ``generation`` and ``updated_at`` are as of the last read (a reader) or
    commit (a writer).
    """

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
        self._reading = False  # a reader's snapshot is open
        self._files: set[str] = set()  # files a writer holds locked in the open transaction
        self._committing = False  # in ``before_waiting``
        # What a writer calls to commit what it has before it waits for a file another writer
        # holds (an ingest stages its pending files and saves); None: it waits holding them.
        self.before_waiting: Callable[[], None] | None = None
        self.id = 0  # none read yet
        self._front_matter = self._loader = False
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
        self._look_up()
        if self.writable:
            self._lock(exclusive)
            upgrade = not (self._front_matter and self._loader)
            if upgrade and not exclusive:  # an exclusive writer adds no document
                add_metadata_columns(self.conn, self.id, self.name)
                self._front_matter = self._loader = True
            self.conn.commit()
        else:
            self.conn.rollback()  # a reader holds no transaction between reads

    def _look_up(self) -> None:
        """Read the collection's row (in the transaction this starts): its manifest and
        counts, and the tables of the collection under this name now."""
        row = self._collection_row()
        if row is None:
            self.conn.rollback()
            if not self.id:
                raise CollectionNotFoundError(
                    f"collection {self.name!r} does not exist in {redact(self.url)}",
                    "run `ragcli ingest PATH` first",
                )
            raise CollectionNotFoundError(
                f"collection {self.name!r} was dropped from {redact(self.url)} while open",
                "run `ragcli ingest PATH` to make it again",
            )
        moved = row[0] != self.id
        self._load(row)
        if moved or not (self._front_matter and self._loader):
            self._front_matter, self._loader = has_metadata_columns(self.conn, self.id)

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
        self.kind = check_kind(self.manifest, self.name)
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
        find it, and each refuses one whose embedder, chunking or kind of vectors differ from
        its own.
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

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """One consistent view of the collection for the reads inside the block.

        A reader starts a ``REPEATABLE READ`` transaction on the collection as last committed
        (read again, so a rebuild is followed to its new tables) and ends it with the block;
        a block inside another shares it. A writer reads its own open transaction.
        """
        if self.writable or self._reading:
            yield
            return
        self._begin()
        self._reading = True
        try:
            yield
        finally:
            self._reading = False
            with contextlib.suppress(Exception):
                self.conn.rollback()

    @guarded
    def _begin(self) -> None:
        """Start a reader's transaction: the collection's row, then its tables locked against
        a ``DROP TABLE`` until the transaction ends (both at once, in the order a drop takes
        them, so that a read and a drop never deadlock: one waits for the other to end)."""
        import psycopg

        for _ in range(_LOOKUPS):
            self._look_up()
            try:
                self.conn.execute(
                    self._sql("LOCK TABLE {chunks}, {documents} IN ACCESS SHARE MODE")
                )
                return
            except psycopg.errors.UndefinedTable:  # rebuilt or dropped since the row was read
                self.conn.rollback()
        raise CollectionBusyError(
            f"collection {self.name!r} is being rebuilt again and again",
            "run the command again",
        )

    def _sql(self, query: str) -> Any:
        from psycopg import sql

        return sql.SQL(query).format(documents=self.documents_table, chunks=self.chunks_table)

    @guarded
    def _rows(self, query: str, args: Sequence[Any] = ()) -> list[Sequence[Any]]:
        with self.snapshot():
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
        self._lock_file(file)
        with self.snapshot():
            return super().documents_of_file(file)

    @property
    def chunk_count(self) -> int:
        return int(self._chunks)

    @property
    def updated_at(self) -> float | None:
        return self._updated

    @guarded
    @_one_read
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
            return IndexDescription("exact", kind, f"exact ({kind})", vectors=self.kind)
        held = {"float32": "", "int8": " of halfvecs", "binary": " of binary codes"}[self.kind]
        summary = f"approximate (pgvector HNSW{held}, ef_search {EF_SEARCH}"
        if self.kind == "binary":
            summary += f", {RESCORE_FACTOR} candidates a result rescored by cosine"
        return IndexDescription(
            "approximate", "HNSW", summary + ")", ef_search=EF_SEARCH, vectors=self.kind
        )

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
        self._files.clear()
        self.manifest = manifest

    @contextlib.contextmanager
    def _settings(self, values: dict[str, str]) -> Iterator[None]:
        """Server settings for the statements inside the block (one round trip), the planner's
        back to the session's after it."""
        self.conn.execute(
            "SELECT set_config(n, v, true) FROM unnest(%s::text[], %s::text[]) AS s(n, v)",
            (list(values), list(values.values())),
        )
        yield
        self.conn.execute(
            "SELECT set_config(name, reset_val, true) FROM pg_settings WHERE name = ANY(%s)",
            ([n for n in values if n.startswith(("enable_", "plan_"))],),
        )

    def _filter(self, filters: Filters | None, column: str = "document_id") -> tuple[str, list]:
        """A condition that keeps the chunks of the documents the filters allow."""
        if not filters:
            return "true", []
        where, args = self._document_filter(filters)
        return f"{column} IN (SELECT d.id FROM {{documents}} d WHERE {where})", args

    @guarded
    @_one_read
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
        None); else through the HNSW index, which under a filter scans on until it has k. A
        "binary" collection's index gives RESCORE_FACTOR candidates a result, rescored by
        cosine; every kind's scores are cosines with the stored vectors.
        """
        if self.chunk_count == 0 or k < 1:
            return []
        dimension = int(self.manifest["embedder"]["dimension"])
        check_dimension(self.name, dimension, len(vector))
        where, args = self._filter(filters)
        allowed = self.chunk_count
        if exact is None:
            exact = self.chunk_count < EXACT_BELOW
            if filters and not exact:
                allowed = int(
                    self._rows(f"SELECT count(*) FROM {{chunks}} WHERE {where}", args)[0][0]
                )
                exact = allowed <= EXACT_FILTER_LIMIT
        wanted = k  # candidates from the index
        if self.kind == "binary":
            wanted = max(RESCORE_FACTOR * k, RESCORE_MIN) * (2 if filters else 1)
        # The plan follows the choice made here, planned each time (a statement psycopg has
        # prepared would keep the plan made under its first settings): exact, no index scan;
        # approximate, no sort, so the order comes from the HNSW index (the planner would
        # rather sort a small table, or the chunks a filter allows, found by another index).
        settings = {"plan_cache_mode": "force_custom_plan"}
        settings["enable_indexscan" if exact else "enable_sort"] = "off"
        if not exact:
            settings["hnsw.ef_search"] = str(min(1000, max(EF_SEARCH, wanted)))
            # Binary candidates are rescored, so their order may be relaxed (the scan goes on
            # past ef_search when more are wanted); the others stay in order under a filter.
            strict = "strict_order" if filters else "off"
            settings["hnsw.iterative_scan"] = "relaxed_order" if self.kind == "binary" else strict
            # enough visits to meet the allowed chunks wanted four times over, on average
            visits = 4 * wanted * self.chunk_count // max(allowed, 1)
            scan = min(max(self.chunk_count, MAX_SCAN_TUPLES), max(MAX_SCAN_TUPLES, visits))
            settings["hnsw.max_scan_tuples"] = str(scan)
        with self._settings(settings):
            rows = self._rows(*self._nearest(_vector_text(vector), k, wanted, exact, where, args))
        return [(int(i), float(s)) for i, s in rows]

    def _nearest(
        self, query: str, k: int, wanted: int, exact: bool, where: str, args: list[Any]
    ) -> tuple[str, list[Any]]:
        """The statement of a dense search and its arguments: (id, cosine), best first."""
        if self.kind == "float32":  # the index orders by the cosine distance itself
            return (
                f"SELECT id, 1 - (embedding <=> %s::vector) FROM {{chunks}} WHERE {where} "
                "ORDER BY embedding <=> %s::vector LIMIT %s",
                [query, *args, query, k],
            )
        # halfvecs: the cosine distance of each vector as stored to the query as given
        distance = "SELECT id, embedding::vector <=> %s::vector AS distance FROM"
        if exact:
            return (
                f"SELECT id, 1 - distance FROM ({distance} {{chunks}} WHERE {where}) c "
                "ORDER BY distance, id LIMIT %s",
                [query, *args, k],
            )
        dimension = int(self.manifest["embedder"]["dimension"])
        if self.kind == "binary":
            order = f"{bits(dimension)} <~> binary_quantize(%s::vector)::bit({dimension})"
        else:
            order = "embedding <=> %s::halfvec"
        return (
            f"SELECT id, 1 - distance FROM ({distance} (SELECT id, embedding FROM "
            f"{{chunks}} WHERE {where} ORDER BY {order} LIMIT %s) candidates) c "
            "ORDER BY distance, id LIMIT %s",
            [query, *args, query, wanted, k],
        )

    @guarded
    @_one_read
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
    @_one_read
    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of some chunks, one row each (float32, whatever the kind)."""
        import numpy as np

        dimension = int(self.manifest["embedder"]["dimension"])
        if not len(ids):
            return np.zeros((0, dimension), dtype=np.float32)
        wanted = [int(i) for i in ids]
        found = self._rows(
            "SELECT id, embedding::real[] FROM {chunks} WHERE id = ANY(%s)", (wanted,)
        )
        rows = {int(r[0]): r[1] for r in found}
        missing = [i for i in wanted if i not in rows]
        if missing:
            raise CollectionNotFoundError(
                f"collection {self.name!r} no longer holds chunk {missing[0]} "
                f"({len(missing)} of the {len(wanted)} asked for): it changed meanwhile",
                "run the command again",
            )
        return np.asarray([rows[i] for i in wanted], dtype=np.float32)

    # -- writing -----------------------------------------------------------------------------

    def _write(self) -> None:
        if not self.writable:
            raise RuntimeError("collection opened read-only")
        self._dirty = True

    def _lock_file(self, file: str) -> None:
        """Hold ``file``'s lock until the open transaction ends (a writer sharing the collection).

        A free lock is taken at once. One another writer holds is waited for; a writer that
        holds file locks of its own first commits what it has (``before_waiting``), so that it
        never waits holding a lock another may be waiting for.
        """
        if not self.lock_files or file in self._files:
            return
        key = (self.id, file)
        if not self.conn.execute(
            "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", key
        ).fetchone()[0]:
            if self._files and self.before_waiting is not None and not self._committing:
                self._committing = True
                try:
                    self.before_waiting()  # commits: no lock is left to wait for
                finally:
                    self._committing = False
            self.conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", key)
        self._files.add(file)

    @guarded
    def touch_file(self, file: str, mtime: float) -> None:
        self._lock_file(file)
        super().touch_file(file, mtime)

    @guarded
    def set_origin(self, file: str, root: str | None, origin: str | None) -> None:
        self._lock_file(file)
        super().set_origin(file, root, origin)

    @guarded
    def delete_file(self, file: str) -> int:
        self._lock_file(file)
        return super().delete_file(file)

    @guarded
    def delete_documents(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        if self.lock_files and keys:
            files = self.conn.execute(
                self._sql("SELECT DISTINCT file FROM {documents} WHERE path = ANY(%s) ORDER BY 1"),
                (keys,),
            ).fetchall()
            for (file,) in files:
                self._lock_file(file)
        return super().delete_documents(keys)

    @guarded
    def add_document(
        self,
        document: Document,
        chunk_count: int,
        root: str | None = None,
        origin: str | None = None,
    ) -> int:
        self._lock_file(str(document.path))
        return super().add_document(document, chunk_count, root, origin)

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
        self._files.clear()
        self._dirty = False
        self._chunk_delta = self._word_delta = 0

    def rollback(self) -> None:
        """Drop pending changes."""
        with contextlib.suppress(Exception):
            self.conn.rollback()
        self._files.clear()
        self._dirty = False
        self._chunk_delta = self._word_delta = 0

    def compact(self) -> None:
        """VACUUM the collection's tables, so the space of removed chunks is reused and the
        planner's statistics are fresh (PostgreSQL keeps no segments to merge)."""
        from psycopg import sql

        if self.conn.info.transaction_status:  # VACUUM runs outside a transaction
            self.conn.commit()
            self._files.clear()
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


# The reads ``SqlStore`` makes of several statements, each in one snapshot: a reader's is one
# transaction that ends when the method returns.
for _method in (
    "matching_documents",
    "documents",
    "documents_from_folder",
    "ingest_arguments",
    "document_details",
    "counts",
    "sample_texts",
    "sample_chunks",
    "hits",
    "passage",
    "document_passages",
    "files_of_chunks",
    "search",
    "check",
):
    setattr(PgStore, _method, _one_read(getattr(SqlStore, _method)))
