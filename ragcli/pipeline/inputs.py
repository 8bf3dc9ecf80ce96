"""Arguments -> the files to ingest: folders walked, globs expanded, links checked, shards."""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase, translate
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


# Never collected: version control folders, editors' swap, backup, lock and probe files (vim
# writes "4913" to test a folder), temporary files. Names starting with "." are left out of
# folders anyway; they are here for globs, file arguments and ``ingest --watch``.
DEFAULT_IGNORE = (
    ".git", ".hg", ".svn", ".bzr", "_darcs", "CVS",
    "*.swp", "*.swx", "*~", ".#*", "~$*", "4913", "*.tmp",
)  # fmt: skip


class Ignore:
    """What is never collected: ``DEFAULT_IGNORE`` and the ``--ignore`` patterns.

    A pattern without ``/`` matches the name of a file or of any folder above it under the
    folder given (``*.log``, ``drafts``); one with ``/`` matches the path under that folder, or
    a folder on it (``archive/2019``, ``notes/*.bak.md``).
    """

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        given = (p.strip().strip("/") for p in patterns)
        self.patterns = tuple(dict.fromkeys([*DEFAULT_IGNORE, *(p for p in given if p)]))
        # One regular expression for each kind: a walk tests every file it sees.
        self._name = _any_of(p for p in self.patterns if "/" not in p)
        self._path = _any_of(p for p in self.patterns if "/" in p)

    def leaves_out(self, relative: str) -> bool:
        """Whether a pattern matches this path itself: its name, or (with "/") all of it."""
        name = relative.rsplit("/", 1)[-1]
        return bool(self._name and self._name.match(name)) or bool(
            self._path and self._path.match(relative)
        )

    def match(self, relative: str) -> str | None:
        """The pattern that leaves out a path (``/``-separated, under the folder given) or a
        folder on it, or None."""
        parts = [p for p in relative.split("/") if p not in ("", ".")]
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if not any(self.leaves_out(prefix) for prefix in prefixes):
            return None
        return next(
            p
            for p in self.patterns
            if any(fnmatchcase(c, p) for c in (prefixes if "/" in p else parts))
        )

    def under(self, path: Path, base: Path) -> str | None:
        """The pattern that leaves out ``path``, found under the folder ``base``, or None."""
        return self.match(os.path.relpath(path, base).replace(os.sep, "/"))

    def hides(self, path: Path, base: Path) -> bool:
        """Whether a walk of the folder ``base`` leaves ``path`` out: hidden, or ignored."""
        relative = os.path.relpath(path, base).replace(os.sep, "/")
        hidden = any(p.startswith(".") and p != ".." for p in relative.split("/"))
        return hidden or self.match(relative) is not None


def _any_of(patterns: Iterable[str]) -> re.Pattern[str] | None:
    expressions = [f"(?:{translate(p)})" for p in patterns]
    return re.compile("|".join(expressions)) if expressions else None


def glob_base(pattern: str) -> Path:
    """The folder a glob pattern searches: its path up to the first part with a wildcard."""
    parts = Path(pattern).expanduser().parts
    literal = []
    for part in parts:
        if glob.has_magic(part):
            break
        literal.append(part)
    return Path(*literal) if literal else Path(".")


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _walk(
    root: Path, skip: Callable[[str, str], None], ignore: Ignore, base: Path
) -> Iterator[Path]:
    """The files under ``root``, less hidden ones and those ``ignore`` matches under ``base``."""

    def unreadable(error: OSError) -> None:
        reason = "permission denied" if isinstance(error, PermissionError) else error.strerror
        skip(_display(Path(error.filename).absolute()), f"cannot list folder: {reason}")

    # The folders above an entry were tested when the walk entered them: only the entry's
    # own name (and its whole path, for patterns with "/") is left to test.
    if ignore.under(root, base) is not None:
        return
    for directory, dirs, files in os.walk(root, onerror=unreadable, followlinks=False):
        above = os.path.relpath(directory, base).replace(os.sep, "/")
        prefix = "" if above == "." else above + "/"

        def kept(name: str, prefix: str = prefix) -> bool:
            return not name.startswith(".") and not ignore.leaves_out(prefix + name)

        dirs[:] = sorted(d for d in dirs if kept(d))
        yield from (Path(directory) / name for name in sorted(files) if kept(name))


def _link_problem(path: Path) -> str | None:
    """Why a symbolic link leads nowhere, or None when it is no link or a working one."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as e:
        return "symbolic link loop" if e.errno == errno.ELOOP else "broken symbolic link"
    return None


def collect_inputs(
    arguments: Iterable[str],
    skipped: list[SkippedFile],
    events: Events,
    ignore: Ignore | None = None,
) -> Found:
    """Expand files, folders (recursively) and globs into unique readable candidates.

    Hidden and ignored files and folders are left out of folders and globs quietly; a file
    argument that is ignored is skipped with its reason.
    """
    ignore = ignore or Ignore()
    found: dict[Path, InputFile] = {}
    folders: list[str] = []

    def skip(path: str, reason: str) -> None:
        skipped.append(SkippedFile(path, reason))
        events.warn(f"skipped {path}: {reason}")

    for argument in arguments:
        candidates: list[Path]
        given = Path(argument).expanduser()
        root: Path | None = None
        base = given.parent  # what ignore patterns match paths under
        if not given.exists() and not given.is_symlink() and glob.has_magic(argument):
            base = glob_base(argument)
            candidates = [
                Path(p)
                for p in sorted(glob.glob(str(given), recursive=True))
                if ignore.under(Path(p), base) is None
            ]
            if not candidates:
                skip(argument, "no file matches this pattern")
        elif given.is_dir():
            root = given.resolve()
            folders.append(str(root))
            candidates = list(_walk(given, skip, ignore, given))
        else:
            pattern = ignore.match(given.name)
            if pattern is not None:
                skip(_display(given.absolute()), f"ignored (matches {pattern!r})")
                continue
            candidates = [given]
        for candidate in candidates:
            shown = _display(candidate.absolute())
            if candidate.is_dir():
                candidates.extend(_walk(candidate, skip, ignore, base))
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
