"""What the use cases tell their caller while they work."""

from __future__ import annotations


class Events:
    """What the pipeline tells its caller while it works; the default says nothing."""

    def status(self, message: str) -> None:
        """A one-line note on what is happening (model preparation, commits)."""

    def warn(self, message: str) -> None:
        """Something went wrong with one input; the work goes on."""

    def start(self, total: int, description: str) -> None:
        """A counted task begins."""

    def advance(self, amount: int = 1) -> None:
        """Progress on the current counted task."""

    def finish(self) -> None:
        """The counted task is over."""

    def change(self, action: str, source: str, chunks: int | None = None) -> None:
        """A committed change to one file of a watched collection (``ingest --watch``):
        ``action`` is "added", "updated" or "removed"; ``chunks`` the file's chunks now."""
