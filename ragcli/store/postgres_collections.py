"""Whole collections in a PostgreSQL database: whether one exists, their names, the staging
collection a rebuild fills and publishes in one transaction, dropping one."""

from __future__ import annotations

import contextlib
from typing import Any

from ragcli.errors import CollectionBusyError, CollectionNotFoundError, StoreUnavailableError
from ragcli.store.postgres import PgStore
from ragcli.store.postgres_db import connect, connect_error, drop_tables, guarded


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


@guarded
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


@guarded
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
