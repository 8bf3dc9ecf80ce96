"""The two consoles (results on stdout, everything else on stderr) and the one-line messages."""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from typing import Any

from rich.console import Console
from rich.markup import escape


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
