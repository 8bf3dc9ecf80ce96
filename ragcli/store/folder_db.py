"""The folder store's SQLite database: its schema, the query dialect, the version-1 upgrade.

``meta.sqlite`` holds the documents and chunks (the columns ``base.SqlStore`` reads and writes),
the lexical index (FTS5, BM25 with Porter stemming, kept in step with the chunks by triggers),
the vectors' ``segments`` and ``deleted`` chunk ids, and a small ``state`` table (the
committed generation, when it was committed, the vectors' layout, the int8 grid).
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from pathlib import Path

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
    origin TEXT,  -- root + the file's path under it (before symlinks are resolved)
    -- The Markdown front matter's date (epoch seconds) and tags (a JSON list of lower-case
    -- strings); the pages, slides or sheets the file has; the pages whose text OCR read and
    -- what the loader doubted about the file (JSON lists). NULL: none.
    date REAL,
    tags TEXT,
    pages INTEGER,
    ocr_pages TEXT,
    warnings TEXT
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
-- The vectors: segment files of disjoint chunk id ranges (README "Storage"), and the chunks
-- removed whose vectors are still in a segment.
CREATE TABLE IF NOT EXISTS segments (
    number INTEGER PRIMARY KEY,  -- the generation that wrote it
    file TEXT NOT NULL,          -- seg-<number>.faiss (vectors-<n>.faiss: made before segments)
    codec TEXT NOT NULL,         -- float32, int8 or binary (then also seg-<number>.bits.faiss)
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    vectors INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deleted (id INTEGER PRIMARY KEY);
CREATE TRIGGER IF NOT EXISTS chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
"""


# Added by format 2; a version-1 database read as it is lacks them.
_ORIGIN_COLUMNS = (("root", "TEXT"), ("origin", "TEXT"))
# Added later in format 2 (front matter, then pages, OCR and warnings); a database made before
# read as it is lacks them.
_METADATA_COLUMNS = (
    ("date", "REAL"), ("tags", "TEXT"), ("pages", "INTEGER"), ("ocr_pages", "TEXT"),
    ("warnings", "TEXT"),
)  # fmt: skip


def connect(path: Path) -> sqlite3.Connection:
    """The database, in autocommit mode (transactions are begun explicitly), foreign keys on.

    A connection may pass from one thread to another (a server's pool of readers), never be
    used by two at once.
    """
    db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA foreign_keys = ON")
    return db


def create_tables(db: sqlite3.Connection) -> None:
    """Make what a new collection lacks; write-ahead logging, so readers never wait."""
    db.execute("PRAGMA journal_mode = WAL")
    db.executescript(_SCHEMA)


def has_origin_columns(db: sqlite3.Connection) -> bool:
    """Whether the documents table has format 2's columns."""
    return _has_columns(db, _ORIGIN_COLUMNS)


def add_origin_columns(db: sqlite3.Connection) -> None:
    """Give a version-1 documents table format 2's columns."""
    _add_columns(db, _ORIGIN_COLUMNS)


def has_metadata_columns(db: sqlite3.Connection) -> tuple[bool, bool]:
    """Whether the documents table has the front matter's columns (``date``, ``tags``), and
    whether it has the loader's (``pages``, ``ocr_pages``, ``warnings``): a collection made
    before either lacks them until its next writer."""
    return _has_columns(db, _METADATA_COLUMNS[:2]), _has_columns(db, _METADATA_COLUMNS[2:])


def add_metadata_columns(db: sqlite3.Connection) -> None:
    """Give a documents table made before them the front matter's columns."""
    _add_columns(db, _METADATA_COLUMNS)


def _has_columns(db: sqlite3.Connection, wanted: tuple[tuple[str, str], ...]) -> bool:
    columns = {r[1] for r in db.execute("PRAGMA table_info(documents)")}
    return all(name in columns for name, _ in wanted)


def _add_columns(db: sqlite3.Connection, wanted: tuple[tuple[str, str], ...]) -> None:
    if _has_columns(db, wanted):
        return
    for name, kind in wanted:
        with contextlib.suppress(sqlite3.OperationalError):  # already there
            db.execute(f"ALTER TABLE documents ADD COLUMN {name} {kind}")


@functools.lru_cache(maxsize=256)
def sqlite_query(query: str) -> str:
    """A query of ``SqlStore``'s dialect in SQLite's: ``?`` placeholders, the table names."""
    query = query.format(documents="documents", chunks="chunks")
    return query.replace("%s", "?").replace("%%", "%")
