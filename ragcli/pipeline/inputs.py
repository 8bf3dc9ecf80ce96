"""Arguments -> the files to ingest: folders walked, globs expanded, links checked, shards."""

from __future__ import annotations

import errno
import glob
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ragcli.loaders import is_supported
from ragcli.pipeline.events import Events
from ragcli.records import SkippedFile


@dataclass
class InputFile:
    path: Path  # absolute, resolved
    source: str  # as cited
    doc_id: str  # relative to the folder it was found in, or the file name
    root: str | None = None  # the folder argument it was found in, resolved
    origin: str | None = None  # root + its path under it (symlinks below root not resolved)


@dataclass
class Found:
    """What some ingest arguments name: readable candidates, and the folders walked."""

    inputs: list[InputFile]
    folders: list[str]  # resolved folder arguments: pruning looks under these only


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _walk(root: Path, skip: Callable[[str, str], None]) -> Iterator[Path]:
    def unreadable(error: OSError) -> None:
        reason = "permission denied" if isinstance(error, PermissionError) else error.strerror
        skip(_display(Path(error.filename).absolute()), f"cannot list folder: {reason}")

    for directory, dirs, files in os.walk(root, onerror=unreadable, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(directory) / name


def _link_problem(path: Path) -> str | None:
    """Why a symbolic link leads nowhere, or None when it is no link or a working one."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as e:
        return "symbolic link loop" if e.errno == errno.ELOOP else "broken symbolic link"
    return None


def collect_inputs(arguments: Iterable[str], skipped: list[SkippedFile], events: Events) -> Found:
    """Expand files, folders (recursively) and globs into unique readable candidates."""
    found: dict[Path, InputFile] = {}
    folders: list[str] = []

    def skip(path: str, reason: str) -> None:
        skipped.append(SkippedFile(path, reason))
        events.warn(f"skipped {path}: {reason}")

    for argument in arguments:
        candidates: list[Path]
        given = Path(argument).expanduser()
        root: Path | None = None
        if not given.exists() and not given.is_symlink() and glob.has_magic(argument):
            candidates = [Path(p) for p in sorted(glob.glob(str(given), recursive=True))]
            if not candidates:
                skip(argument, "no file matches this pattern")
        elif given.is_dir():
            root = given.resolve()
            folders.append(str(root))
            candidates = list(_walk(given, skip))
        else:
            candidates = [given]
        for candidate in candidates:
            shown = _display(candidate.absolute())
            if candidate.is_dir():
                candidates.extend(_walk(candidate, skip))
                continue
            problem = _link_problem(candidate)
            if problem:
                skip(shown, problem)
                continue
            if not candidate.exists():
                skip(shown, "no such file")
                continue
            if not is_supported(candidate):
                skip(shown, f"unsupported file type {candidate.suffix or '(no extension)'!r}")
                continue
            try:
                resolved = candidate.resolve(strict=True)
            except (OSError, RuntimeError) as e:
                skip(shown, f"cannot resolve path ({e})")
                continue
            relative = candidate.relative_to(given) if root else None
            item = found.setdefault(
                resolved,
                InputFile(resolved, shown, relative.as_posix() if relative else candidate.name),
            )
            if root and relative and item.origin is None:
                item.root, item.origin = str(root), str(root / relative)
    return Found(list(found.values()), folders)


def shard_of(root: str | None, origin: str | None, file: str, shards: int) -> int:
    """Which of ``shards`` ingesters (1-based) takes a file: by a hash of its path under the
    folder it was found in (its name for a file argument), the same on every machine."""
    key = os.path.relpath(origin, root) if root and origin else os.path.basename(file)
    digest = hashlib.sha256(PurePosixPath(key).as_posix().encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards + 1


def in_shard(item: InputFile, shard: tuple[int, int]) -> bool:
    return shard_of(item.root, item.origin, str(item.path), shard[1]) == shard[0]
