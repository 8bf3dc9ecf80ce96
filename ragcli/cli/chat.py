"""``ragcli chat``: questions and follow-ups in a loop on a terminal, the models loaded once.

Lines are read with the standard library's readline (line editing, input history kept in
``RAGCLI_HOME/chat_history``, Tab completes the commands); each question goes to one
``Conversation``, which rewrites follow-ups and records the turns (in ``--session FILE``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ragcli.cli import inputs
from ragcli.cli.options import Backend, Collection, Debug, Llm, SessionFile, TopK
from ragcli.cli.root import boundary
from ragcli.errors import RagcliError, UsageError

if TYPE_CHECKING:
    from ragcli.pipeline import Conversation
    from ragcli.records import Answer

COMMANDS = (
    ("/sources", "the passages of the last answer, with their text"),
    ("/k N", "retrieve N passages for each question from now on"),
    ("/new", "forget the conversation: the next question starts a new one"),
    ("/save FILE", "write the session to FILE (JSON Lines); later turns are recorded there too"),
    ("/help", "this list"),
    ("/quit", "leave (Ctrl-D does too)"),
)
HISTORY_FILE = "chat_history"  # in RAGCLI_HOME
HISTORY_LINES = 1000


def chat(
    collection: Collection = None,
    top_k: TopK = None,
    session: SessionFile = None,
    llm: Llm = None,
    backend: Backend = None,
    debug: Debug = False,
) -> None:
    """Talk with the collection on a terminal: a question, then follow-ups ("who built it?").

    Answers stream with their sources; Ctrl-C stops an answer, Ctrl-D or /quit leaves, /help
    lists the commands. Needs a terminal; scripts use `ragcli ask --session FILE`.
    """
    from ragcli import console, pipeline

    with boundary(debug):
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise UsageError(
                "chat needs a terminal on standard input and output",
                "in a script or a pipe, ask each question with `ragcli ask --session FILE "
                "QUESTION` (follow-ups included)",
            )
        settings = inputs.settings(collection=collection, llm=llm, backend=backend, top_k=top_k)
        events = console.ConsoleEvents()
        kept = pipeline.Session.open(session, settings.collection, events)
        with pipeline.Conversation(settings, kept, events) as conversation:
            conversation.load()  # before the first prompt, not in the first answer
            console.render_chat_start(settings.collection, kept.path, len(kept.context))
            with _line_editing(settings.home / HISTORY_FILE):
                _Chat(conversation, settings.top_k).run(f"{settings.collection}> ")


@dataclass
class _Chat:
    """The loop's state: the conversation, k, and the last answer (for /sources)."""

    conversation: Conversation
    top_k: int
    last: Answer | None = field(default=None)

    def run(self, prompt: str) -> None:
        from ragcli import console

        while True:
            try:
                line = input(prompt).strip()
            except EOFError:  # Ctrl-D
                console.write("\n")
                return
            except KeyboardInterrupt:  # Ctrl-C at the prompt drops the line, as shells do
                console.write("\n")
                continue
            if not line:
                continue
            try:
                if line.startswith("/"):
                    if not self.command(line):
                        return
                else:
                    self.ask(line)
            except RagcliError as e:  # one failed question or command does not end the chat
                console.error(e.message, e.hint)

    def ask(self, question: str) -> None:
        from ragcli import console

        try:
            answer = self.conversation.ask(question, top_k=self.top_k, on_token=console.write)
        except KeyboardInterrupt:  # the stream was closed on the way out: the model stopped
            console.write("\n")
            console.note("answer stopped; it was not recorded")
            return
        console.render_answer(answer, show_passages=False, quiet=False)
        self.last = answer

    def command(self, line: str) -> bool:
        """Carry out a /command; False when the chat should end."""
        from ragcli import console

        name, _, argument = line.partition(" ")
        argument = argument.strip()
        if name in ("/quit", "/exit"):
            return False
        if name == "/help":
            console.render_chat_help(COMMANDS)
        elif name == "/sources":
            if self.last is None:
                console.note("no answer yet in this chat")
            else:
                console.render_passages(self.last)
        elif name == "/k":
            if not argument.isdigit() or int(argument) < 1:
                raise UsageError("/k takes a number of passages of 1 or more, e.g. /k 6")
            self.top_k = int(argument)
            console.note(f"k = {self.top_k}: {self.top_k} passages for each question from now on")
        elif name == "/new":
            self.conversation.session.forget()
            console.note("new conversation: the next question is asked without the earlier ones")
        elif name == "/save":
            if not argument:
                raise UsageError("/save needs a FILE, e.g. /save session.jsonl")
            saved = self.conversation.session.save_as(Path(argument).expanduser())
            console.note(f"saved {saved} turns to {argument}; later turns are recorded there too")
        else:
            raise UsageError(f"unknown command {name}", "/help lists the commands")
        return True


@contextlib.contextmanager
def _line_editing(history: Path) -> Iterator[None]:
    """Line editing, input history kept in ``history``, and Tab completion of the commands,
    through readline where Python has it (plain input() otherwise)."""
    try:
        import readline
    except ImportError:
        yield
        return
    readline.set_history_length(HISTORY_LINES)
    with contextlib.suppress(OSError):
        readline.read_history_file(history)
    names = [name.split()[0] for name, _ in COMMANDS]

    def complete(text: str, state: int) -> str | None:
        matches = [n for n in names if n.startswith(text)] if text.startswith("/") else []
        return matches[state] if state < len(matches) else None

    readline.set_completer(complete)
    readline.set_completer_delims(" \t\n")
    libedit = "libedit" in (readline.__doc__ or "")
    readline.parse_and_bind("bind ^I rl_complete" if libedit else "tab: complete")
    try:
        yield
    finally:
        readline.set_completer(None)
        with contextlib.suppress(OSError):
            history.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(history)
