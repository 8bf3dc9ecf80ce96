"""What commands take besides flag values: the settings, questions and texts from stdin or files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.errors import UsageError

if TYPE_CHECKING:
    from ragcli.config import Settings


def settings(**overrides: Any) -> Settings:
    """The settings for these flags (flag > env > config file > default), loaded when needed."""
    from ragcli.config import load_settings

    return load_settings(**overrides)


def read_question(question: str | None) -> str:
    """QUESTION, or standard input when it is '-' or omitted (and stdin is no terminal)."""
    if question is None or question == "-":
        if question is None and sys.stdin.isatty():
            raise UsageError("missing QUESTION", "pass it as an argument or pipe it on stdin")
        question = sys.stdin.read()
    question = question.strip()
    if not question:
        raise UsageError("the question is empty")
    return question


def batch_questions(source: str) -> list[tuple[str, str]]:
    """The (id, question) pairs of a ``--batch`` FILE, or of stdin for '-'."""
    from ragcli.batch import parse_questions

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read {source}: {e.strerror or e}") from e
    return parse_questions(text, "stdin" if source == "-" else source)


def read_texts(texts: list[str] | None) -> list[str]:
    """TEXT arguments, or the non-blank lines of stdin when there are none (or just '-')."""
    if not texts or texts == ["-"]:
        if not texts and sys.stdin.isatty():
            raise UsageError("missing TEXT", "pass texts as arguments or pipe them one per line")
        texts = [line.strip() for line in sys.stdin.read().splitlines() if line.strip()]
        if not texts:
            raise UsageError("no text on standard input")
    if any(not text.strip() for text in texts):
        raise UsageError("a TEXT is empty")
    return texts
