"""Renderers for ``ragcli chat``: the greeting, the command list and the last answer's passages."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.markup import escape

from ragcli.console import streams
from ragcli.console.streams import note
from ragcli.prompting import passage_label
from ragcli.records import Answer


def render_chat_start(collection: str, session: Path | None, earlier_turns: int) -> None:
    """One line on stderr: what the chat talks to, what it continues, how to use it."""
    where = f"collection '{collection}'"
    if session is not None:
        kept = f"{earlier_turns} earlier turns" if earlier_turns else "new"
        where += f", session {session} ({kept})"
    note(f"chat with {where}; /help lists the commands, Ctrl-C stops an answer, Ctrl-D leaves")


def render_chat_help(commands: Sequence[tuple[str, str]]) -> None:
    """The chat's commands, one a line."""
    out = streams.out()
    width = max(len(name) for name, _ in commands)
    for name, description in commands:
        out.print(f"[bold]{escape(name.ljust(width))}[/]  {escape(description)}")


def render_passages(answer: Answer) -> None:
    """Every passage the model was given for the answer (or, withheld for weak retrieval, the
    nearest ones), numbered as it cited them, each with its text."""
    cited = {c.marker for c in answer.citations}
    if answer.abstain_reason == "weak retrieval":
        title = "Nearest passages (the model was not asked):"
    else:
        title = "Passages given to the model:"
    out = streams.out()
    out.print(title, markup=False)
    for number, hit in enumerate(answer.passages, start=1):
        mark = "  (cited)" if number in cited else ""
        out.print(f"[{number}] {passage_label(hit)}{mark}", markup=False, style="bold")
        for line in hit.text.strip().splitlines():
            out.print("    " + line, markup=False)
