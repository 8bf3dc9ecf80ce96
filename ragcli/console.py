"""The only module that imports rich: stdout/stderr consoles, renderers and progress."""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from typing import Any

from rich.console import Console
from rich.markup import escape

from ragcli.models import Answer, Hit, IngestReport, SearchResult
from ragcli.pipeline import Events
from ragcli.prompting import passage_label

SNIPPET_CHARS = 220


@lru_cache(maxsize=1)
def out() -> Console:
    """Results: plain text when stdout is not a terminal."""
    return Console(highlight=False, soft_wrap=True)


@lru_cache(maxsize=1)
def err() -> Console:
    """Everything else: progress, warnings, errors."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_is_terminal() -> bool:
    return out().is_terminal


def write(text: str) -> None:
    """Raw text to stdout (streamed answers), flushed."""
    sys.stdout.write(text)
    sys.stdout.flush()


def print_json(data: Any, lines: bool = False) -> None:
    """One JSON document (or one JSON Lines record) on stdout."""
    text = json.dumps(data, ensure_ascii=False, indent=None if lines else 2)
    write(text + "\n")


def error(message: str, hint: str | None = None) -> None:
    err().print(f"[bold red]ragcli: error:[/] {escape(message)}")
    if hint:
        err().print(f"[dim]hint: {escape(hint)}[/]")


def warning(message: str) -> None:
    err().print(f"[yellow]ragcli: warning:[/] {escape(message)}")


def note(message: str) -> None:
    err().print(f"[dim]{escape(message)}[/]")


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
                note(message)

    def warn(self, message: str) -> None:
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.console.print(f"[yellow]ragcli: warning:[/] {escape(message)}")
        else:
            warning(message)

    def start(self, total: int, description: str) -> None:
        if self.quiet or not err().is_terminal:
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
            console=err(),
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


# -- renderers ---------------------------------------------------------------------------------


def render_ingest(report: IngestReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    if report.dry_run:
        for action, paths in (
            ("add", report.added),
            ("update", report.updated),
            ("unchanged", report.unchanged),
        ):
            for path in paths:
                write(f"{action}\t{path}\n")
        for skipped in report.skipped:
            write(f"skip\t{skipped.path}\t{skipped.reason}\n")
        write(
            f"dry run for collection '{report.collection}': {len(report.added)} to add, "
            f"{len(report.updated)} to check for changes, {len(report.unchanged)} unchanged, "
            f"{len(report.skipped)} skipped\n"
        )
        return
    write(
        f"collection '{report.collection}': {len(report.added)} added, "
        f"{len(report.updated)} updated, {len(report.unchanged)} unchanged, "
        f"{len(report.skipped)} skipped; {report.chunks_added} chunks added"
        + (f", {report.chunks_removed} removed" if report.chunks_removed else "")
        + f" ({report.seconds:.1f} s)\n"
    )


def _one_line(text: str, limit: int = SNIPPET_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def render_search(result: SearchResult, as_json: bool) -> None:
    if as_json:
        print_json(result.to_dict())
        return
    if not stdout_is_terminal():
        for hit in result.hits:
            fields = [
                str(hit.rank),
                f"{hit.score:.4f}",
                hit.source,
                hit.location,
                _one_line(hit.text),
            ]
            write("\t".join(fields) + "\n")
        return
    for hit in result.hits:
        where = f"  [cyan]{escape(hit.location)}[/]" if hit.location else ""
        heading = f"  [dim]{escape(hit.heading)}[/]" if hit.heading else ""
        score = f"[green]{hit.score:.3f}[/]"
        out().print(f"[bold]{hit.rank}.[/] {score}  [bold]{escape(hit.source)}[/]{where}{heading}")
        out().print(f"   {escape(_one_line(hit.text))}")


def _source_lines(hits: list[tuple[int, Hit]], show_text: bool) -> list[str]:
    lines = []
    for number, hit in hits:
        lines.append(f"[{number}] {passage_label(hit)}")
        if show_text:
            lines += ["    " + line for line in hit.text.strip().splitlines()]
    return lines


def render_answer_sources(answer: Answer, show_passages: bool) -> None:
    """After a streamed answer: the cited sources (stdout on a terminal, stderr when piped)."""
    if answer.citations:
        title = "Sources:"
        numbered = [(c.marker, c.hit) for c in answer.citations]
    else:
        title = "Passages given to the model (none cited):"
        numbered = list(enumerate(answer.passages, start=1))
    lines = [title, *_source_lines(numbered, show_passages)]
    if answer.unknown_markers:
        lines.append(
            "cited passage(s) that do not exist: "
            + ", ".join(f"[{n}]" for n in answer.unknown_markers)
        )
    target = out() if stdout_is_terminal() else err()
    target.print("")
    for line in lines:
        target.print(line, markup=False, style="dim" if target is err() else None)
