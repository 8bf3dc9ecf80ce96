"""``ConsoleEvents``: the pipeline's status, warnings, progress and a watch's changes, shown on
stderr."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from ragcli.console import streams
from ragcli.pipeline import Events


class ConsoleEvents(Events):
    """Pipeline events shown on stderr; a progress bar only when stderr is a terminal."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._progress: Any = None
        self._task: Any = None

    def status(self, message: str) -> None:
        if not self.quiet:
            if self._progress is not None:
                self._progress.console.print(f"[dim]{escape(message)}[/]")
            else:
                streams.note(message)

    def warn(self, message: str) -> None:
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.console.print(f"[yellow]ragcli: warning:[/] {escape(message)}")
        else:
            streams.warning(message)

    def start(self, total: int, description: str) -> None:
        if self.quiet or not streams.err().is_terminal:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=streams.err(),
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def change(self, action: str, source: str, chunks: int | None = None) -> None:
        # What a watch is for: shown even with --quiet.
        counted = f" ({chunks} chunk{'' if chunks == 1 else 's'})" if chunks is not None else ""
        streams.err().print(f"{action} {source}{counted}", markup=False, highlight=False)
