"""The folder store's files: the manifest, the writer lock, atomic writes, and whole folders
replaced, recovered and dropped in one step."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.errors import (
    CollectionBusyError,
    CollectionNotFoundError,
    IncompatibleCollectionError,
)
from ragcli.store.common import (
    MANIFEST,
    check_format,
)

if TYPE_CHECKING:
    pass


DATABASE = "meta.sqlite"
LOCK = "write.lock"


def read_manifest(directory: Path) -> dict[str, Any]:
    """Read and check a collection's manifest; raise a clear error if it is missing or foreign."""
    path = directory / MANIFEST
    if not path.is_file():
        if directory.exists():
            raise IncompatibleCollectionError(
                f"{directory} is not a ragcli collection (no {MANIFEST})",
                "remove the folder or pick another collection name with -c",
            )
        raise CollectionNotFoundError(
            f"collection {directory.name!r} does not exist",
            "run `ragcli ingest PATH` first",
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IncompatibleCollectionError(f"damaged collection manifest {path}: {e}") from e
    return check_format(manifest, directory.name, str(path))


def lock_collection(directory: Path) -> int | None:
    """Take the collection's writer lock (a file descriptor to close), or fail at once."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no advisory locks on this platform
        return None
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        raise CollectionBusyError(
            f"collection {directory.name!r} is being written by another ragcli process",
            "wait for that ingest to finish, then run this one again",
        ) from e
    return fd


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- replacing and removing whole collections --------------------------------------------------


def new_collection_dir(directory: Path) -> Path:
    """Where a new collection is made until its first commit moves it to ``directory``."""
    return directory.with_name(f".{directory.name}.new")


def staging_dir(directory: Path) -> Path:
    """Where ``ingest --rebuild`` builds the collection that replaces ``directory``."""
    return directory.with_name(f".{directory.name}.rebuild")


def _retired_dir(directory: Path) -> Path:
    return directory.with_name(f".{directory.name}.old")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step (Linux ``renameat2(RENAME_EXCHANGE)``)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def replace_collection(new: Path, current: Path) -> None:
    """Put the collection built in ``new`` in the place of ``current``, then delete the old one.

    Readers see the old collection or the new one: the two folders trade places in one
    rename where the system allows it. Elsewhere the old folder is renamed away first; a
    crash between the two renames is finished by ``recover_collection``.
    """
    if _exchange(new, current):
        fsync_dir(current.parent)
        shutil.rmtree(new, ignore_errors=True)
        return
    retired = _retired_dir(current)
    shutil.rmtree(retired, ignore_errors=True)
    os.rename(current, retired)
    os.rename(new, current)
    fsync_dir(current.parent)
    shutil.rmtree(retired, ignore_errors=True)


def recover_collection(directory: Path) -> None:
    """Finish a replacement that a crash cut between its two renames (see above)."""
    retired = _retired_dir(directory)
    if directory.exists() or not retired.exists():
        return
    staged = staging_dir(directory)
    if (staged / MANIFEST).exists():
        os.rename(staged, directory)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.rename(retired, directory)


def discard_staging(directory: Path) -> None:
    """Delete what a rebuild that died left behind (the caller holds the collection's lock)."""
    shutil.rmtree(staging_dir(directory), ignore_errors=True)


def drop_collection(directory: Path) -> None:
    """Delete a collection, unless a writer holds it: renamed away first, so never half there."""
    fd = lock_collection(directory)
    doomed = directory.with_name(f".{directory.name}.drop-{os.getpid()}")
    try:
        os.rename(directory, doomed)
        fsync_dir(directory.parent)
    finally:
        if fd is not None:
            os.close(fd)
    discard_staging(directory)
    shutil.rmtree(doomed, ignore_errors=True)
