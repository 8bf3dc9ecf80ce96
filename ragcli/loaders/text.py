"""Plain text: bytes decoded (BOMs, UTF-8, Windows-1252, binary refused) into paragraph blocks
with their line spans; ``Sections``, the heading stack the structured formats share."""

from __future__ import annotations

import re

from ragcli.errors import LoaderError
from ragcli.records import Block

WS = re.compile(r"\s+")
# C0 controls other than tab, line feed, vertical tab, form feed and carriage return; DEL; C1.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def decode_text(data: bytes) -> str:
    """Decode text bytes: BOMs first, then UTF-8, then Windows-1252/Latin-1; refuse binary."""
    if data.startswith(b"\xef\xbb\xbf"):
        text = data[3:].decode("utf-8", errors="replace")
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", errors="replace")
    elif b"\x00" in data[:8192]:
        raise LoaderError("binary file (contains NUL bytes)")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
    sample = text[:65536]
    if len(_CONTROL.findall(sample)) * 10 > len(sample):
        raise LoaderError("binary file (mostly control characters)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def paragraphs(
    lines: list[str], first_line: int, heading: str | None, page: int | None = None
) -> list[Block]:
    """Split lines on blank lines into blocks that know their 1-based line span."""
    blocks: list[Block] = []
    start: int | None = None
    for i, line in enumerate([*lines, ""]):
        if line.strip():
            if start is None:
                start = i
        elif start is not None:
            text = "\n".join(lines[start:i]).strip()
            number = None if page is not None else first_line + start
            end = None if page is not None else first_line + i - 1
            blocks.append(Block(text, page=page, line_start=number, line_end=end, heading=heading))
            start = None
    return blocks


def parse_text(data: bytes) -> tuple[list[Block], str | None]:
    """Plain text: paragraphs separated by blank lines."""
    return paragraphs(decode_text(data).split("\n"), 1, None), None


class Sections:
    """Collects paragraph blocks under a stack of headings."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.stack: list[tuple[int, str]] = []
        self.pending: list[str] = []
        self.pending_start = 1
        self.title: str | None = None

    @property
    def path(self) -> str | None:
        return " > ".join(t for _, t in self.stack) or None

    def line(self, number: int, text: str) -> None:
        if not self.pending:
            self.pending_start = number
        self.pending.append(text)

    def flush(self) -> None:
        self.blocks += paragraphs(self.pending, self.pending_start, self.path)
        self.pending = []

    def heading(self, level: int, text: str, first: int, last: int) -> None:
        self.flush()
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, text))
        if self.title is None:
            self.title = text
        self.blocks.append(
            Block(text, line_start=first, line_end=last, heading=self.path, is_heading=True)
        )
