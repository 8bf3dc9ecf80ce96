"""Where collections live: one interface, a folder (FAISS + SQLite) or PostgreSQL.

``common`` holds what both share (format, manifest, stored documents, the interface), ``base``
the SQL both keep (``SqlStore``), ``folder`` the FAISS + SQLite collection (``folder_db`` its
database, ``folder_files`` its whole-folder lifecycle, ``segments`` its vector segments,
``faiss_index`` their indexes), ``postgres`` the PostgreSQL + pgvector collection
(``postgres_db`` the server side, ``postgres_collections`` whole collections), and
``location`` which of them holds a collection (``location_for(settings)``) and what
``stores.json`` remembers.
"""

from ragcli.store.common import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST,
    READABLE_VERSIONS,
    CollectionReader,
    IndexDescription,
    Store,
    StoredDocument,
    make_manifest,
)
from ragcli.store.faiss_index import calibrate_probes, describe_index, lists_for, rebuilt_index
from ragcli.store.folder import FaissStore, opened
from ragcli.store.folder_files import (
    discard_staging,
    drop_collection,
    lock_collection,
    new_collection_dir,
    read_manifest,
    recover_collection,
    replace_collection,
    staging_dir,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST",
    "READABLE_VERSIONS",
    "CollectionReader",
    "FaissStore",
    "IndexDescription",
    "Store",
    "StoredDocument",
    "calibrate_probes",
    "describe_index",
    "discard_staging",
    "drop_collection",
    "lists_for",
    "lock_collection",
    "make_manifest",
    "new_collection_dir",
    "opened",
    "read_manifest",
    "rebuilt_index",
    "recover_collection",
    "replace_collection",
    "staging_dir",
]
