"""The PostgreSQL side of the database store: URLs and connection errors (``guarded`` turns
them into ragcli errors), the server set-up (extension, text search configuration, the
collections table), and each collection's tables (their vector column and HNSW index as the
collection's kind of vectors asks)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ragcli.errors import (
    CollectionBusyError,
    IncompatibleCollectionError,
    StoreUnavailableError,
)
from ragcli.store.common import vector_kind

# The schema and the server-side set-up.
SCHEMES = ("postgresql", "postgres")
EXTENSION = "vector"
TEXT_SEARCH_CONFIG = "ragcli"
SETUP_LOCK = 0x72616764


_SETUP = """
CREATE TABLE IF NOT EXISTS ragcli_collections (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    manifest jsonb NOT NULL,
    generation bigint NOT NULL DEFAULT 0,
    chunks bigint NOT NULL DEFAULT 0,
    words bigint NOT NULL DEFAULT 0,
    updated_at double precision
)
"""
# A stemming dictionary without stopwords, and no whole-hyphenated-word tokens (only their
# parts): what SQLite's "porter unicode61" tokenizer keeps, as near as PostgreSQL gets.
_TEXT_SEARCH = f"""
DO $$ BEGIN
IF NOT EXISTS (SELECT 1 FROM pg_ts_dict WHERE dictname = 'ragcli_stem') THEN
    CREATE TEXT SEARCH DICTIONARY ragcli_stem (TEMPLATE = snowball, LANGUAGE = english);
END IF;
IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = '{TEXT_SEARCH_CONFIG}') THEN
    CREATE TEXT SEARCH CONFIGURATION {TEXT_SEARCH_CONFIG} (COPY = english);
    ALTER TEXT SEARCH CONFIGURATION {TEXT_SEARCH_CONFIG}
        ALTER MAPPING REPLACE english_stem WITH ragcli_stem;
    ALTER TEXT SEARCH CONFIGURATION {TEXT_SEARCH_CONFIG}
        DROP MAPPING IF EXISTS FOR asciihword, hword, numhword;
END IF;
END $$
"""
_TABLES = """
CREATE TABLE {documents} (
    id bigserial PRIMARY KEY,
    path text NOT NULL UNIQUE,
    file text NOT NULL,
    doc_id text NOT NULL,
    source text NOT NULL,
    format text NOT NULL,
    title text,
    sha256 text NOT NULL,
    size bigint NOT NULL,
    mtime double precision NOT NULL,
    chunks integer NOT NULL,
    ingested_at double precision NOT NULL,
    root text,
    origin text,
    date double precision,
    tags text,
    pages integer,
    ocr_pages text,
    warnings text
);
CREATE INDEX ON {documents} (file);
CREATE INDEX ON {documents} (origin text_pattern_ops);
CREATE TABLE {chunks} (
    id bigserial PRIMARY KEY,
    document_id bigint NOT NULL REFERENCES {documents} (id) ON DELETE CASCADE,
    key text NOT NULL,
    ordinal integer NOT NULL,
    text text NOT NULL,
    n_tokens integer NOT NULL,
    page integer,
    line_start integer,
    line_end integer,
    heading text,
    words integer NOT NULL,
    embedding {column}({dimension}) NOT NULL,
    lexemes tsvector GENERATED ALWAYS AS (to_tsvector('{config}'::regconfig, text)) STORED,
    UNIQUE (document_id, ordinal)
);
CREATE INDEX ON {chunks} (document_id);
CREATE INDEX ON {chunks} USING gin (lexemes);
CREATE INDEX ON {chunks} USING hnsw ({index});
"""
# How each kind of collection keeps its vectors: the column's type (pgvector has no 8-bit type;
# ``halfvec``, 2 bytes a dimension, is its compressed one), and what the HNSW index holds.
# "binary" indexes the sign bits of the halfvecs (Hamming distance) and rescores its candidates
# by cosine on the halfvecs themselves.
VECTOR_KINDS = ("float32", "int8", "binary")
_COLUMNS = {"float32": "vector", "int8": "halfvec", "binary": "halfvec"}


def vector_column(kind: str) -> str:
    """The type of the ``embedding`` column of a collection of this kind of vectors."""
    return _COLUMNS[kind]


def bits(dimension: int) -> str:
    """The binary code the HNSW index of a "binary" collection holds (and is searched by)."""
    return f"binary_quantize(embedding)::bit({dimension})"


def hnsw_index(kind: str, dimension: int) -> str:
    """What the HNSW index of a collection of this kind is built on, with its operator class."""
    if kind == "binary":
        return f"({bits(dimension)}) bit_hamming_ops"
    return f"embedding {vector_column(kind)}_cosine_ops"


def check_kind(manifest: dict[str, Any], name: str) -> str:
    """The collection's kind of vectors, if this ragcli knows it."""
    kind = vector_kind(manifest)
    if kind not in VECTOR_KINDS:
        raise IncompatibleCollectionError(
            f"collection {name!r} keeps {kind} vectors, which this ragcli does not know "
            f"(it knows {', '.join(VECTOR_KINDS)})",
            "use the ragcli version that made it, or re-ingest into a new collection",
        )
    return kind


# -- URLs and errors ----------------------------------------------------------------------------


def is_url(value: str | None) -> bool:
    """Whether a ``--store`` value names a PostgreSQL database."""
    return bool(value) and urlsplit(value or "").scheme in SCHEMES


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages)."""
    return rewrite_password(url, "***")


def without_password(url: str) -> str:
    """The URL with any password left out (what is remembered on disk)."""
    return rewrite_password(url, None)


def rewrite_password(url: str, password: str | None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        credentials, host = netloc.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        if ":" in credentials:
            netloc = f"{user}:{password}@{host}" if password else f"{user}@{host}"
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "password" for k, _ in query):
        kept = [(k, v) for k, v in query if k != "password"]
        if password:
            kept.append(("password", password))
        query = kept
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="/*"), ""))


def password_of(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.password:
        return parts.password
    return dict(parse_qsl(parts.query)).get("password")


def first_line(error: BaseException, secret: str | None) -> str:
    text = str(error).strip().removeprefix("connection failed: ")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else type(error).__name__
    if secret:
        line = line.replace(secret, "***")
    return line


def connect_error(error: BaseException, url: str) -> StoreUnavailableError:
    reason = first_line(error, password_of(url))
    where = redact(url)
    lowered = reason.lower()
    if "password" in lowered or "authentication" in lowered or "role" in lowered:
        hint = "check the user name and the password (in the URL, PGPASSWORD or ~/.pgpass)"
        return StoreUnavailableError(f"PostgreSQL at {where} refused the login: {reason}", hint)
    if "database" in lowered and "does not exist" in lowered:
        hint = "create the database first (createdb NAME), or name another one in the URL"
        return StoreUnavailableError(f"cannot use PostgreSQL at {where}: {reason}", hint)
    hint = "start the server, or check the host and port in --store / RAGCLI_STORE"
    return StoreUnavailableError(f"cannot connect to PostgreSQL at {where}: {reason}", hint)


def connect(url: str, **options: Any) -> Any:
    """A psycopg connection, or a one-line error that says why there is none."""
    import psycopg

    try:
        return psycopg.connect(url, connect_timeout=10, application_name="ragcli", **options)
    except psycopg.OperationalError as e:
        raise connect_error(e, url) from None


def setup(conn: Any, url: str) -> None:
    """Make sure pgvector, the text search configuration and the catalogue table exist."""
    import psycopg

    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SETUP_LOCK,))
        try:
            with conn.transaction():
                conn.execute(f"CREATE EXTENSION IF NOT EXISTS {EXTENSION}")
        except psycopg.Error as e:
            database = conn.info.dbname
            if isinstance(e, psycopg.errors.InsufficientPrivilege):
                raise StoreUnavailableError(
                    f"the pgvector extension is not enabled in database {database!r} at "
                    f"{redact(url)}, and this user may not enable it",
                    f"ask an administrator to run: CREATE EXTENSION {EXTENSION}; in {database}",
                ) from None
            raise StoreUnavailableError(
                f"the pgvector extension is not installed on PostgreSQL at {redact(url)} "
                f"({first_line(e, password_of(url))})",
                "install pgvector on the server (e.g. the postgresql-NN-pgvector package)",
            ) from None
        conn.execute(_TEXT_SEARCH)
        conn.execute(_SETUP)


def identifier(name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(name)


def check_same(found: dict[str, Any], wanted: dict[str, Any], name: str) -> None:
    """Refuse a collection another ingester made with other settings at the same time (another
    embedder, chunking or kind of vectors)."""
    mine = (wanted["embedder"]["name"], wanted["embedder"]["dimension"], wanted["chunking"])
    theirs = (found["embedder"]["name"], found["embedder"]["dimension"], found["chunking"])
    if mine != theirs:
        raise IncompatibleCollectionError(
            f"collection {name!r} was just made with embedder {theirs[0]!r} and chunking "
            f"{theirs[2]}, not {mine[0]!r} and {mine[2]}",
            "give every ingester of one collection the same settings",
        )
    kept, asked = vector_kind(found), vector_kind(wanted)
    if kept != asked:
        raise IncompatibleCollectionError(
            f"collection {name!r} keeps {kept} vectors, not {asked}",
            "leave --vectors out to keep the collection's, ingest into another collection "
            f"with -c, or convert it with ingest --rebuild --vectors {asked}",
        )


def make_collection(conn: Any, url: str, name: str, manifest: dict[str, Any]) -> None:
    """Insert the collection's row and create its tables, unless it is there already."""
    kind = check_kind(manifest, name)
    setup(conn, url)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (SETUP_LOCK, name))
        if conn.execute("SELECT 1 FROM ragcli_collections WHERE name = %s", (name,)).fetchone():
            return
        collection_id = conn.execute(
            "INSERT INTO ragcli_collections (name, manifest) VALUES (%s, %s) RETURNING id",
            (name, json.dumps(manifest)),
        ).fetchone()[0]
        create_tables(conn, collection_id, int(manifest["embedder"]["dimension"]), kind)


def create_tables(conn: Any, collection_id: int, dimension: int, kind: str = "float32") -> None:
    from psycopg import sql

    script = _TABLES.format(
        documents="{documents}",
        chunks="{chunks}",
        column=vector_column(kind),
        dimension=dimension,
        config=TEXT_SEARCH_CONFIG,
        index=hnsw_index(kind, dimension),
    )
    for statement in filter(None, (s.strip() for s in script.split(";"))):
        conn.execute(
            sql.SQL(statement).format(
                documents=identifier(f"ragcli_{collection_id}_documents"),
                chunks=identifier(f"ragcli_{collection_id}_chunks"),
            )
        )


# The documents' columns added after collections were first made in PostgreSQL (front matter):
# a collection made before lacks them until its next writer adds them.
METADATA_COLUMNS = (
    ("date", "double precision"), ("tags", "text"), ("pages", "integer"), ("ocr_pages", "text"),
    ("warnings", "text"),
)  # fmt: skip
# How long a writer waits to add them while readers hold the table.
UPGRADE_LOCK_TIMEOUT = "5s"


def has_metadata_columns(conn: Any, collection_id: int) -> tuple[bool, bool]:
    """Whether the collection's documents table has the front matter's columns (``date``,
    ``tags``), and whether it has the loader's (``pages``, ``ocr_pages``, ``warnings``)."""
    names = [name for name, _ in METADATA_COLUMNS]
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(quote_ident(%s)) "
        "AND attname = ANY(%s) AND attnum > 0 AND NOT attisdropped",
        (f"ragcli_{collection_id}_documents", names),
    ).fetchall()
    present = {row[0] for row in rows}
    return present >= set(names[:2]), present >= set(names[2:])


def add_metadata_columns(conn: Any, collection_id: int, name: str) -> None:
    """Give a documents table made before them the front matter's columns (in the open
    transaction); CollectionBusyError when readers hold the table longer than a moment."""
    import psycopg
    from psycopg import sql

    additions = sql.SQL(", ").join(
        sql.SQL("ADD COLUMN IF NOT EXISTS {} {}").format(sql.Identifier(column), sql.SQL(kind))
        for column, kind in METADATA_COLUMNS
    )
    statement = sql.SQL("ALTER TABLE {} {}").format(
        identifier(f"ragcli_{collection_id}_documents"), additions
    )
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = '{UPGRADE_LOCK_TIMEOUT}'")
            conn.execute(statement)
    except psycopg.errors.LockNotAvailable:
        raise CollectionBusyError(
            f"collection {name!r} is being read by another process, and this first write by "
            "this ragcli version adds columns (front matter, pages, OCR, warnings) to its "
            "documents table",
            "stop the `ragcli serve` or `ragcli mcp` that reads it for a moment, or try again",
        ) from None


def drop_tables(conn: Any, collection_id: int) -> None:
    from psycopg import sql

    for kind in ("chunks", "documents"):
        conn.execute(
            sql.SQL("DROP TABLE IF EXISTS {}").format(identifier(f"ragcli_{collection_id}_{kind}"))
        )


_T = TypeVar("_T")


def guarded(method: Callable[..., _T]) -> Callable[..., _T]:
    """Turn a lost connection, a deadlock or a full lock table in a ``PgStore`` method (whose
    ``self`` has ``name`` and ``url``) into a ragcli error."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> _T:
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
