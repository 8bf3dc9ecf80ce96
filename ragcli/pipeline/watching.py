"""The watch use case: a collection kept in step with its files as they change.

``ingest --watch`` syncs once, then watches the paths given (watchfiles: inotify, FSEvents or
ReadDirectoryChangesW, polling where none works). A burst of changes that settles becomes one
more sync: the same ingest over the same arguments, so every sync is as crash-safe as an
ingest, and cheap, since unchanged files are skipped by size and mtime. Each committed change
is reported through ``Events.change``; SIGINT and SIGTERM end the watch after the commit of
the files done (a second one stops at once, as an interrupted ingest does).
"""

from __future__ import annotations

import glob
import queue
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ragcli.config import Settings
from ragcli.errors import CollectionBusyError, NothingIngestedError, RagcliError, UsageError
from ragcli.loaders import is_supported
from ragcli.models.embedding import Embedder
from ragcli.pipeline.events import Events
from ragcli.pipeline.exporting import export_for_queries
from ragcli.pipeline.ingesting import Ingest
from ragcli.pipeline.inputs import Ignore, glob_base
from ragcli.records import IngestReport

QUIET_MS = 200  # a burst of changes is over once nothing changed for this long...
LONGEST_MS = 2000  # ...or this long after it began, whichever comes first
WAKE_MS = 200  # a watcher with nothing to report wakes this often (the first time: it watches)
BUSY_RETRY_S = 1.0  # another writer holds the collection: try again after this long
POLL_S = 0.2  # how often the loop looks whether it was asked to stop


def watch(
    settings: Settings,
    arguments: list[str],
    events: Events | None = None,
    prune: bool = True,
    ignore: Sequence[str] = (),
    stop: threading.Event | None = None,
) -> IngestReport:
    """Ingest the files named, then keep the collection in step with them until stopped.

    Files added, changed, deleted or renamed under a folder argument, a file argument and
    files matching a glob argument are synced; editors' temporary files and ``ignore``
    patterns never are. Stops when ``stop`` is set, or on SIGINT/SIGTERM (in the main thread).
    Returns what the whole watch did, as one ingest report.
    """
    events = events or Events()
    stop = stop or threading.Event()
    ignored = Ignore(ignore)
    scope = _Scope(arguments, ignored)
    session = _Session(settings, arguments, _WarnOnce(events), prune, ignored, stop)
    # Watching starts before the first sync, so nothing that changes during it is missed.
    with _stopped_by_signals(stop), _Watchers(scope, stop) as changes:
        session.sync(first=True)
        while not stop.is_set():
            if changes.wait(POLL_S) or session.retry_due():
                session.sync()
    session.stopped()
    return session.total()


class _Scope:
    """What the arguments watch: folders (recursively), files, glob patterns; and which
    changed paths concern them."""

    def __init__(self, arguments: list[str], ignore: Ignore) -> None:
        if not arguments:
            raise UsageError("missing PATH", "give the files, folders or glob patterns to watch")
        self.ignore = ignore
        self.folders: list[Path] = []
        self.files: set[Path] = set()
        self.globs: list[tuple[Path, bool]] = []  # a pattern's folder, and whether below it
        for argument in arguments:
            given = Path(argument).expanduser()
            if not given.exists() and not given.is_symlink() and glob.has_magic(argument):
                base = glob_base(argument)
                deep = len(given.parts) > len(base.parts) + 1  # a wildcard above the name
                self.globs.append((_folder(base, argument), deep))
            elif given.is_dir():
                self.folders.append(given.resolve())
            else:  # a file, or one not made yet: its folder is watched
                self.files.add(_folder(given.absolute().parent, argument) / given.name)

    def roots(self) -> tuple[list[Path], list[Path]]:
        """The folders to watch with their subfolders, and those to watch alone."""
        deep = [*self.folders, *(base for base, below in self.globs if below)]
        flat = [*(f.parent for f in self.files), *(base for base, below in self.globs if not below)]
        deep = [d for d in set(deep) if not any(o != d and d.is_relative_to(o) for o in deep)]
        flat = [f for f in set(flat) if not any(f.is_relative_to(d) for d in deep)]
        return sorted(deep), sorted(flat)

    def concerns(self, path: str) -> bool:
        """Whether a change of this path may change what the arguments name."""
        changed = Path(path)
        if changed in self.files:
            return True
        for folder in self.folders:
            if changed.is_relative_to(folder):
                return not self.ignore.hides(changed, folder) and self._may_hold_input(changed)
        for base, below in self.globs:
            inside = changed.is_relative_to(base) if below else changed.parent == base
            if inside and self.ignore.under(changed, base) is None:
                return self._may_hold_input(changed)
        return False

    @staticmethod
    def _may_hold_input(path: Path) -> bool:
        """A file of a supported type, or a folder (or what was one: a deleted path)."""
        return is_supported(path) or not path.is_file()


def _folder(path: Path, argument: str) -> Path:
    """The folder an argument is watched in; it must exist."""
    if not path.is_dir():
        raise UsageError(
            f"cannot watch {argument!r}: no folder {str(path)!r}",
            "give files, folders or glob patterns in folders that exist",
        )
    return path.resolve()


class _Watchers:
    """watchfiles watching the scope's folders in threads (one for folders watched with their
    subfolders, one for those watched alone); ``wait`` gives what changed.

    Entering returns once every watcher watches: a change made after that is never missed.
    """

    def __init__(self, scope: _Scope, stop: threading.Event) -> None:
        self.scope, self.stop = scope, stop
        self.changes: queue.Queue[set[str] | BaseException] = queue.Queue()
        self.threads: list[threading.Thread] = []

    def __enter__(self) -> _Watchers:
        deep, flat = self.scope.roots()
        for roots, recursive in ((deep, True), (flat, False)):
            if roots:
                watching = threading.Event()
                thread = threading.Thread(
                    target=self._watch, args=(roots, recursive, watching), daemon=True
                )
                thread.start()
                self.threads.append(thread)
                while not watching.wait(0.05) and thread.is_alive():
                    pass  # a watcher that failed left its error for ``wait``
        return self

    def _watch(self, roots: list[Path], recursive: bool, watching: threading.Event) -> None:
        import watchfiles

        try:
            for changed in watchfiles.watch(
                *roots,
                watch_filter=lambda _change, path: self.scope.concerns(path),
                debounce=LONGEST_MS,
                step=QUIET_MS,
                stop_event=self.stop,
                rust_timeout=WAKE_MS,
                yield_on_timeout=True,
                recursive=recursive,
                raise_interrupt=False,
            ):
                watching.set()
                if changed:
                    self.changes.put({path for _change, path in changed})
        except Exception as e:  # the folder went away, too many folders for inotify, ...
            self.changes.put(e)

    def wait(self, timeout: float) -> set[str]:
        """The paths that changed, waiting up to ``timeout`` seconds for the first ones."""
        paths: set[str] = set()
        try:
            item = self.changes.get(timeout=timeout)
            while True:
                if isinstance(item, BaseException):
                    raise RagcliError(
                        f"cannot watch the files any longer: {item}",
                        "on a network file system, set WATCHFILES_FORCE_POLLING=1",
                    ) from item
                paths |= item
                item = self.changes.get_nowait()
        except queue.Empty:
            return paths

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=5)


@contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop``; a second one interrupts at once (KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)


class _WarnOnce(Events):
    """The caller's events, each distinct warning said once per watch: a file that cannot be
    read would otherwise be warned about at every sync."""

    def __init__(self, events: Events) -> None:
        self.events = events
        self.said: set[str] = set()

    def status(self, message: str) -> None:
        self.events.status(message)

    def warn(self, message: str) -> None:
        if message not in self.said:
            self.said.add(message)
            self.events.warn(message)

    def start(self, total: int, description: str) -> None:
        self.events.start(total, description)

    def advance(self, amount: int = 1) -> None:
        self.events.advance(amount)

    def finish(self) -> None:
        self.events.finish()

    def change(self, action: str, source: str, chunks: int | None = None) -> None:
        self.events.change(action, source, chunks)


class _Session:
    """The syncs of one watch, what they share (the embedder, the watched files) and the sum
    of their reports."""

    def __init__(
        self,
        settings: Settings,
        arguments: list[str],
        events: Events,
        prune: bool,
        ignore: Ignore,
        stop: threading.Event,
    ) -> None:
        self.settings, self.arguments, self.events = settings, arguments, events
        self.prune, self.ignore, self.stop = prune, ignore, stop
        self.embedders: dict[str, Embedder] = {}
        self.watched_files: set[str] = set()
        self.reports: list[IngestReport] = []
        self.started = time.perf_counter()
        self.retry_at: float | None = None
        self.cut_short = False  # the last sync ended early, asked to stop
        self.exported = False  # the embedder's ONNX export was looked after

    def retry_due(self) -> bool:
        return self.retry_at is not None and time.monotonic() >= self.retry_at

    def sync(self, first: bool = False) -> None:
        """One ingest of the arguments, then what it changed: after the first a summary, after
        the others one line per file."""
        job = Ingest(self.settings, self.events, prune=self.prune, ignore=self.ignore)
        job.stop, job.embedders, job.watched_files = self.stop, self.embedders, self.watched_files
        try:
            job.update(self.arguments)
        except CollectionBusyError as e:
            if self.retry_at is None:
                self.events.warn(f"{e.message}; trying again until it is free")
            self.retry_at = time.monotonic() + BUSY_RETRY_S
            return
        except NothingIngestedError:
            pass  # nothing readable there yet; the warnings said why, if anything was there
        self.retry_at = None
        self.watched_files = {str(item.path) for item in job.found.inputs if item.root is None}
        report = job.report
        self.reports.append(report)
        if report.chunks_added and not self.exported:
            export_for_queries(self.settings, self.events)  # tried once per watch
            self.exported = True
        if first:
            self._summary(report)
        else:
            self._changes(report)
        self.cut_short = job.cut_short

    def stopped(self) -> None:
        if self.cut_short:
            self.events.status(
                "stopped during a sync: the files it had done are committed; the same "
                "command does the rest"
            )
        else:
            self.events.status("stopped")

    def _summary(self, report: IngestReport) -> None:
        skipped = f", {len(report.skipped)} skipped" if report.skipped else ""
        self.events.status(
            f"collection '{report.collection}': {len(report.added)} added, "
            f"{len(report.updated)} updated, {len(report.removed)} removed, "
            f"{len(report.unchanged)} unchanged{skipped}; watching for changes (Ctrl-C stops)"
        )

    def _changes(self, report: IngestReport) -> None:
        for source in report.removed:
            self.events.change("removed", source)
        for action, sources in (("added", report.added), ("updated", report.updated)):
            for source in sources:
                self.events.change(action, source, report.chunks_of.get(source))

    def total(self) -> IngestReport:
        """The watch as one report of what changed between its start and its end: a file
        added and then removed is in neither list, one removed and back again is updated.
        Unchanged: the first sync's files that stayed so; skipped: as the last sync found
        them; chunks: what all the syncs added and removed."""
        total = IngestReport(collection=self.settings.collection)
        state: dict[str, str] = {}  # each file's change since the start
        for report in self.reports:
            for source in report.removed:
                if state.pop(source, None) != "added":
                    state[source] = "removed"
            for source in report.added:
                state[source] = "updated" if state.get(source) == "removed" else "added"
            for source in report.updated:
                state[source] = "added" if state.get(source) == "added" else "updated"
            total.warnings += report.warnings
            total.chunks_added += report.chunks_added
            total.chunks_removed += report.chunks_removed
            total.chunks_of.update(report.chunks_of)
        total.added, total.updated, total.removed = (
            [source for source, change in state.items() if change == kind]
            for kind in ("added", "updated", "removed")
        )
        total.warnings = list({(w.path, w.reason): w for w in total.warnings}.values())
        total.skipped = list(self.reports[-1].skipped) if self.reports else []
        first = self.reports[0].unchanged if self.reports else []
        total.unchanged = [source for source in first if source not in state]
        total.seconds = time.perf_counter() - self.started
        return total
