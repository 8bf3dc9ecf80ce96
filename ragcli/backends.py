"""Where a collection lives: a folder (FAISS + SQLite, the default) or a PostgreSQL database.

``backend_for(settings)`` picks one per collection: ``--store``/``RAGCLI_STORE`` when given,
else the database an earlier ingest recorded for the collection in ``$RAGCLI_HOME/stores.json``
(without its password), else the folder. The pipeline and ``manage.py`` talk to a ``Backend``
and the stores it opens, never to one kind directly.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ragcli.config import Settings
from ragcli.store import (
    MANIFEST,
    FaissStore,
    Store,
    describe_index,
    discard_staging,
    drop_collection,
    new_collection_dir,
    read_manifest,
    recover_collection,
    replace_collection,
    staging_dir,
)

if TYPE_CHECKING:
    import numpy as np

    from ragcli.records import Chunk, Document
    from ragcli.store import StoredDocument

STORES_FILE = "stores.json"
FAISS = "faiss"


class CollectionStore(Store, Protocol):
    """An open collection, as the pipeline reads and writes it."""

    @property
    def chunk_count(self) -> int: ...
    @property
    def updated_at(self) -> float | None: ...
    @property
    def generation(self) -> int: ...
    def documents(self) -> list[StoredDocument]: ...
    def documents_from_folder(self, folder: str) -> list[StoredDocument]: ...
    def ingest_arguments(self) -> list[str]: ...
    def document_details(self) -> list[dict[str, Any]]: ...
    def counts(self) -> dict[str, int]: ...
    def sample_texts(self, count: int) -> list[str]: ...
    def disk_bytes(self) -> int: ...
    def add_document(
        self,
        document: Document,
        chunk_count: int,
        root: str | None = None,
        origin: str | None = None,
    ) -> int: ...
    def add_chunks(
        self, document_id: int, chunks: Sequence[Chunk], vectors: np.ndarray
    ) -> None: ...
    def touch_file(self, file: str, mtime: float) -> None: ...
    def set_origin(self, file: str, root: str | None, origin: str | None) -> None: ...
    def delete_documents(self, keys: Iterable[str]) -> int: ...


class Backend(Protocol):
    """One collection's home, and what can be done to the collection as a whole."""

    name: str
    location: str  # shown by status; never holds a password

    def recover(self) -> None: ...
    def exists(self) -> bool: ...
    def read_manifest(self) -> dict[str, Any]: ...
    def open(self, writable: bool = False, load_vectors: bool = True) -> Any: ...
    def create(self, manifest: dict[str, Any]) -> Any: ...
    def discard_new(self, store: Any) -> None: ...
    def discard_staging(self) -> None: ...
    def open_for_rebuild(self) -> Any: ...
    def create_staging(self, manifest: dict[str, Any], generation: int) -> Any: ...
    def publish_staging(self, new: Any, old: Any) -> None: ...
    def abandon_staging(self, new: Any) -> None: ...
    def describe_index(self, store: Any) -> dict[str, Any]: ...
    def drop(self) -> None: ...


class FolderBackend:
    """A collection in ``$RAGCLI_HOME/collections/NAME`` (see ``store.py``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.name = directory.name
        self.location = str(directory)

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

    def discard_new(self, store: FaissStore) -> None:
        """Delete a new collection that got no commit (still in its staging folder)."""
        shutil.rmtree(store.directory, ignore_errors=True)

    def discard_staging(self) -> None:
        discard_staging(self.directory)

    def open_for_rebuild(self) -> FaissStore:
        return self.open(writable=True)  # its lock keeps other writers out throughout

    def create_staging(self, manifest: dict[str, Any], generation: int) -> FaissStore:
        staging = staging_dir(self.directory)
        return FaissStore.create(staging, manifest, generation_floor=generation)

    def publish_staging(self, new: FaissStore, old: FaissStore) -> None:
        new.checkpoint()
        new.close()
        replace_collection(staging_dir(self.directory), self.directory)

    def abandon_staging(self, new: FaissStore) -> None:
        new.close()
        shutil.rmtree(staging_dir(self.directory), ignore_errors=True)

    def describe_index(self, store: FaissStore) -> dict[str, Any]:
        return describe_index(store.index)

    def drop(self) -> None:
        drop_collection(self.directory)


class PostgresBackend:
    """A collection in a PostgreSQL database with pgvector (see ``pgstore.py``)."""

    def __init__(self, url: str, name: str) -> None:
        from ragcli import pgstore

        self.url = url
        self.name = name
        self.location = f"{pgstore.redact(url)} (collection {name})"
        self._pg = pgstore

    def recover(self) -> None:
        """Nothing to finish: every change to a database collection is one transaction."""

    def exists(self) -> bool:
        return bool(self._pg.collection_exists(self.url, self.name))

    def read_manifest(self) -> dict[str, Any]:
        return dict(self._pg.read_manifest(self.url, self.name))

    def open(self, writable: bool = False, load_vectors: bool = True) -> Any:
        return self._pg.PgStore(self.url, self.name, writable=writable)

    def create(self, manifest: dict[str, Any]) -> Any:
        return self._pg.PgStore.create(self.url, self.name, manifest)

    def discard_new(self, store: Any) -> None:
        """Delete a new collection that got no commit, unless another ingester is filling it."""
        self._pg.discard_if_empty(self.url, self.name)

    def discard_staging(self) -> None:
        """Left to ``create_staging``: other ingesters may be writing now, never a rebuild."""

    def open_for_rebuild(self) -> Any:
        return self._pg.PgStore(self.url, self.name, writable=True, exclusive=True)

    def create_staging(self, manifest: dict[str, Any], generation: int) -> Any:
        return self._pg.create_staging(self.url, self.name, manifest, generation)

    def publish_staging(self, new: Any, old: Any) -> None:
        self._pg.publish_staging(new, old)

    def abandon_staging(self, new: Any) -> None:
        new.close()
        self._pg.discard_staging(self.url, self.name)

    def describe_index(self, store: Any) -> dict[str, Any]:
        return dict(store.describe_index())

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
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(stores, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def remember_store(settings: Settings) -> None:
    """Record the database of a collection, so later commands need only ``-c``; an ingest
    with ``--store faiss`` forgets it."""
    from ragcli.pgstore import without_password

    url = store_url(settings)
    if url is None:
        if settings.store == FAISS:  # moved to (or made again in) a folder: forget the database
            forget_store(settings)
        return
    stores = remembered_stores(settings)
    if stores.get(settings.collection) != without_password(url):
        stores[settings.collection] = without_password(url)
        _write_stores(settings, stores)


def forget_store(settings: Settings) -> None:
    """Forget the database of a dropped collection."""
    stores = remembered_stores(settings)
    if stores.pop(settings.collection, None) is not None:
        _write_stores(settings, stores)


def store_url(settings: Settings) -> str | None:
    """The database URL the collection lives in, or None for a folder collection."""
    from ragcli.pgstore import is_url

    if settings.store:
        return settings.store if is_url(settings.store) else None
    return remembered_stores(settings).get(settings.collection)


def backend_for(settings: Settings) -> Backend:
    """Where the collection named in ``settings`` lives."""
    url = store_url(settings)
    if url is not None:
        return PostgresBackend(url, settings.collection)
    return FolderBackend(settings.collection_dir)


@contextlib.contextmanager
def opened(backend: Backend, writable: bool = False, load_vectors: bool = True) -> Iterator[Any]:
    """Open a collection for the length of a ``with`` block."""
    store = backend.open(writable=writable, load_vectors=load_vectors)
    try:
        yield store
    finally:
        store.close()
