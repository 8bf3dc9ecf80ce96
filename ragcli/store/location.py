"""Where a collection lives: a folder (FAISS + SQLite, the default) or a PostgreSQL database.

``location_for(settings)`` picks one per collection: ``--store``/``RAGCLI_STORE`` when given,
else the database an earlier ingest recorded for the collection in ``$RAGCLI_HOME/stores.json``
(without its password), else the folder. The pipeline and ``manage.py`` talk to a ``Location``
and the stores it opens, never to one kind directly.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ragcli.config import Settings
from ragcli.store import (
    MANIFEST,
    FaissStore,
    IndexDescription,
    Store,
    discard_staging,
    drop_collection,
    new_collection_dir,
    read_manifest,
    recover_collection,
    replace_collection,
    staging_dir,
)

if TYPE_CHECKING:
    from ragcli.store.postgres import PgStore

STORES_FILE = "stores.json"
FAISS = "faiss"


class Location(Protocol):
    """One collection's home, and what can be done to the collection as a whole."""

    name: str
    where: str  # shown by status; never holds a password

    def recover(self) -> None: ...
    def exists(self) -> bool: ...
    def read_manifest(self) -> dict[str, Any]: ...
    def open(self, writable: bool = False, load_vectors: bool = True) -> Store: ...
    def create(self, manifest: dict[str, Any]) -> Store: ...
    def discard_new(self, store: Store) -> None: ...
    def discard_staging(self) -> None: ...
    def open_for_rebuild(self) -> Store: ...
    def create_staging(self, manifest: dict[str, Any], generation: int) -> Store: ...
    def publish_staging(self, new: Store, old: Store) -> None: ...
    def abandon_staging(self, new: Store) -> None: ...
    def describe_index(self, store: Store) -> IndexDescription: ...
    def drop(self) -> None: ...


def _folder_store(store: Store) -> FaissStore:
    """A store this location opened: a folder store (a location never sees another kind)."""
    if not isinstance(store, FaissStore):
        raise TypeError(f"not a folder collection: {type(store).__name__}")
    return store


class FolderLocation:
    """A collection in ``$RAGCLI_HOME/collections/NAME`` (see ``folder.py``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.name = directory.name
        self.where = str(directory)

    def recover(self) -> None:
        recover_collection(self.directory)

    def exists(self) -> bool:
        return (self.directory / MANIFEST).exists()

    def read_manifest(self) -> dict[str, Any]:
        return read_manifest(self.directory)

    def open(self, writable: bool = False, load_vectors: bool = True) -> FaissStore:
        return FaissStore.open(self.directory, writable=writable, load_vectors=load_vectors)

    def create(self, manifest: dict[str, Any]) -> FaissStore:
        """A new collection, built aside and published by its first commit."""
        directory = new_collection_dir(self.directory)
        return FaissStore.create(directory, manifest, publish_to=self.directory)

    def discard_new(self, store: Store) -> None:
        """Delete a new collection that got no commit (still in its staging folder)."""
        shutil.rmtree(_folder_store(store).directory, ignore_errors=True)

    def discard_staging(self) -> None:
        discard_staging(self.directory)

    def open_for_rebuild(self) -> FaissStore:
        return self.open(writable=True)  # its lock keeps other writers out throughout

    def create_staging(self, manifest: dict[str, Any], generation: int) -> FaissStore:
        staging = staging_dir(self.directory)
        return FaissStore.create(staging, manifest, generation_floor=generation)

    def publish_staging(self, new: Store, old: Store) -> None:
        _folder_store(new).checkpoint()
        new.close()
        replace_collection(staging_dir(self.directory), self.directory)

    def abandon_staging(self, new: Store) -> None:
        new.close()
        shutil.rmtree(staging_dir(self.directory), ignore_errors=True)

    def describe_index(self, store: Store) -> IndexDescription:
        return _folder_store(store).describe_index()

    def drop(self) -> None:
        drop_collection(self.directory)


def _postgres_store(store: Store) -> PgStore:
    """A store this location opened: a PostgreSQL store."""
    from ragcli.store.postgres import PgStore

    if not isinstance(store, PgStore):
        raise TypeError(f"not a PostgreSQL collection: {type(store).__name__}")
    return store


class PostgresLocation:
    """A collection in a PostgreSQL database with pgvector (see ``postgres.py``)."""

    def __init__(self, url: str, name: str) -> None:
        from ragcli.store import postgres_collections
        from ragcli.store.postgres_db import redact

        self.url = url
        self.name = name
        self.where = f"{redact(url)} (collection {name})"
        self._pg = postgres_collections

    def recover(self) -> None:
        """Nothing to finish: every change to a database collection is one transaction."""

    def exists(self) -> bool:
        return bool(self._pg.collection_exists(self.url, self.name))

    def read_manifest(self) -> dict[str, Any]:
        return dict(self._pg.read_manifest(self.url, self.name))

    def open(self, writable: bool = False, load_vectors: bool = True) -> PgStore:
        return self._pg.PgStore(self.url, self.name, writable=writable)

    def create(self, manifest: dict[str, Any]) -> PgStore:
        return self._pg.PgStore.create(self.url, self.name, manifest)

    def discard_new(self, store: Store) -> None:
        """Delete a new collection that got no commit, unless another ingester is filling it."""
        self._pg.discard_if_empty(self.url, self.name)

    def discard_staging(self) -> None:
        """Left to ``create_staging``: other ingesters may be writing now, never a rebuild."""

    def open_for_rebuild(self) -> PgStore:
        return self._pg.PgStore(self.url, self.name, writable=True, exclusive=True)

    def create_staging(self, manifest: dict[str, Any], generation: int) -> PgStore:
        return self._pg.create_staging(self.url, self.name, manifest, generation)

    def publish_staging(self, new: Store, old: Store) -> None:
        self._pg.publish_staging(_postgres_store(new), _postgres_store(old))

    def abandon_staging(self, new: Store) -> None:
        new.close()
        self._pg.discard_staging(self.url, self.name)

    def describe_index(self, store: Store) -> IndexDescription:
        return _postgres_store(store).describe_index()

    def drop(self) -> None:
        self._pg.drop_collection(self.url, self.name)


# -- choosing and remembering ------------------------------------------------------------------


def _stores_file(settings: Settings) -> Path:
    return settings.home / STORES_FILE


def remembered_stores(settings: Settings) -> dict[str, str]:
    """Collection name -> database URL (without password) recorded by earlier ingests."""
    path = _stores_file(settings)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_stores(settings: Settings, stores: dict[str, str]) -> None:
    path = _stores_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(stores, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def remember_store(settings: Settings) -> None:
    """Record the database of a collection, so later commands need only ``-c``; an ingest
    with ``--store faiss`` forgets it."""
    from ragcli.store.postgres_db import without_password

    url = store_url(settings)
    if url is None:
        if settings.store == FAISS:  # moved to (or made again in) a folder: forget the database
            forget_store(settings)
        return
    with _stores_locked(settings):  # another ingest may record its collection meanwhile
        stores = remembered_stores(settings)
        if stores.get(settings.collection) != without_password(url):
            stores[settings.collection] = without_password(url)
            _write_stores(settings, stores)


def forget_store(settings: Settings) -> None:
    """Forget the database of a dropped collection."""
    with _stores_locked(settings):
        stores = remembered_stores(settings)
        if stores.pop(settings.collection, None) is not None:
            _write_stores(settings, stores)


@contextlib.contextmanager
def _stores_locked(settings: Settings) -> Iterator[None]:
    """Hold ``stores.json``'s lock file, so that two processes recording their collections at
    once both get recorded (where the platform has flock; elsewhere, unlocked)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = _stores_file(settings).with_name(STORES_FILE + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def store_url(settings: Settings) -> str | None:
    """The database URL the collection lives in, or None for a folder collection."""
    from ragcli.store.postgres_db import is_url

    if settings.store:
        return settings.store if is_url(settings.store) else None
    return remembered_stores(settings).get(settings.collection)


def location_for(settings: Settings) -> Location:
    """Where the collection named in ``settings`` lives."""
    url = store_url(settings)
    if url is not None:
        return PostgresLocation(url, settings.collection)
    return FolderLocation(settings.collection_dir)


@contextlib.contextmanager
def opened(
    location: Location, writable: bool = False, load_vectors: bool = True
) -> Iterator[Store]:
    """Open a collection for the length of a ``with`` block."""
    store = location.open(writable=writable, load_vectors=load_vectors)
    try:
        yield store
    finally:
        store.close()
