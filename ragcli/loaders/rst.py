"""reStructuredText: section titles (underlined, optionally overlined) set the heading path."""

from __future__ import annotations

import re

from ragcli.loaders.text import Sections, decode_text
from ragcli.records import Block

_RST_ADORNMENT = re.compile(r"^([=\-`:'\"~^_*+#<>.!$%&,/;?@\[\]\\{|}()])\1{2,}\s*$")


def parse_rst(data: bytes) -> tuple[list[Block], str | None]:
    """reStructuredText: section titles (underlined, optionally overlined) set the heading."""
    lines = decode_text(data).split("\n")
    sections = Sections()
    styles: list[tuple[str, bool]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        over = _RST_ADORNMENT.match(line)
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        after = lines[i + 2] if i + 2 < len(lines) else ""
        # Overlined title: adornment, text, same adornment.
        if over and nxt.strip() and not _RST_ADORNMENT.match(nxt) and after.strip() == line.strip():
            style = (line.strip()[0], True)
            level = _rst_level(styles, style)
            sections.heading(level, nxt.strip(), i + 1, i + 3)
            i += 3
            continue
        under = _RST_ADORNMENT.match(nxt)
        if (
            line.strip()
            and not line.startswith((" ", "\t"))
            and not over
            and under
            and len(nxt.rstrip()) >= len(line.rstrip())
            and not sections.pending
        ):
            style = (nxt.strip()[0], False)
            sections.heading(_rst_level(styles, style), line.strip(), i + 1, i + 2)
            i += 2
            continue
        sections.line(i + 1, line)
        if not line.strip():
            sections.flush()
        i += 1
    sections.flush()
    return sections.blocks, sections.title


def _rst_level(styles: list[tuple[str, bool]], style: tuple[str, bool]) -> int:
    if style not in styles:
        styles.append(style)
    return styles.index(style) + 1
