"""Small formatting helpers the renderers share: sizes, one-line texts, TSV cells, tables."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from ragcli.console import streams

SNIPPET_CHARS = 220


def size_in_bytes(value: int | None) -> str:
    """``12.3 MB``; ``?`` when unknown."""
    if value is None:
        return "?"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def one_line(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The text on one line, cut with an ellipsis after ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def cell(text: str) -> str:
    """A text as one TSV cell: no tabs or line breaks."""
    return " ".join(text.split())


def pairs(rows: list[tuple[str, Any]]) -> None:
    """Label and value per line: aligned on a terminal, tab-separated when piped."""
    if not streams.stdout_is_terminal():
        for label, value in rows:
            streams.write(f"{label}\t{'' if value is None else value}\n")
        return
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        shown = "-" if value is None or value == "" else escape(str(value))
        streams.out().print(f"[dim]{label:<{width}}[/]  {shown}")


def table(*columns: str) -> Any:
    """A rich table; a column named ``x>`` is right-aligned."""
    from rich.table import Table

    made = Table()
    for column in columns:
        right = column.endswith(">")
        made.add_column(column.rstrip(">"), justify="right" if right else "left", overflow="fold")
    return made
