"""Markdown: paragraphs under ATX and setext headings, code fences kept as text; the YAML front
matter's title, date and tags (read with ``yaml.safe_load``, never indexed)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone

from ragcli.loaders.parsed import Parsed
from ragcli.loaders.text import Sections, decode_text
from ragcli.records import Block

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclass(frozen=True)
class FrontMatter:
    """What a Markdown file's YAML front matter says of it (what ragcli keeps)."""

    title: str | None = None
    date: float | None = None  # seconds since the epoch
    tags: tuple[str, ...] = ()


def read_front_matter(lines: list[str]) -> tuple[FrontMatter, int]:
    """The front matter between a first line ``---`` and the next ``---`` or ``...``, and the
    index of the first line after it. YAML that does not parse (or is not a mapping) counts as
    no front matter, without a warning: many files open with a ``---`` rule."""
    if not lines or lines[0].strip() != "---":
        return FrontMatter(), 0
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        return FrontMatter(), 0
    import yaml

    try:
        fields = yaml.safe_load("\n".join(lines[1:end]))
    except Exception:  # a YAMLError, or a value its constructors refuse (2024-13-45)
        fields = None
    if not isinstance(fields, dict):
        return FrontMatter(), end + 1
    title = fields.get("title")
    title = str(title).strip() if isinstance(title, (str, int, float)) else None
    tags = fields.get("tags")
    if isinstance(tags, (str, int, float)):
        tags = [tags]
    listed = [t for t in tags if isinstance(t, (str, int, float))] if isinstance(tags, list) else []
    front = FrontMatter(title or None, _front_date(fields.get("date")), normal_tags(listed))
    return front, end + 1


def _front_date(value: object) -> float | None:
    if isinstance(value, date):  # YAML dates and timestamps (datetime is a date)
        return moment_seconds(value)
    if isinstance(value, str) and value.strip():
        return iso_seconds(value)
    return None


def iso_seconds(text: str) -> float | None:
    """Seconds since the epoch for an ISO 8601 date or date and time (naive: UTC), else None."""
    text = text.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment_seconds(moment)


def moment_seconds(moment: date) -> float:
    """Seconds since the epoch of a date (its midnight, UTC) or a datetime (naive: UTC)."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def normal_tags(values: Iterable[object]) -> tuple[str, ...]:
    """Tags as stored and compared: split on commas, trimmed, lower case, each once."""
    found: dict[str, None] = {}
    for value in values:
        for part in str(value).split(","):
            tag = part.strip().lower()
            if tag:
                found.setdefault(tag, None)
    return tuple(found)


def parse_markdown(data: bytes) -> tuple[list[Block], str | None]:
    """Markdown: paragraphs under ATX (``#``) and setext headings; code fences kept as text."""
    blocks, title, _ = parse_markdown_document(data)
    return blocks, title


def parse_markdown_file(data: bytes) -> Parsed:
    """A Markdown file as ingest reads it: its front matter's title, date and tags applied."""
    blocks, title, front = parse_markdown_document(data)
    return Parsed(blocks, front.title or title, date=front.date, tags=list(front.tags))


def parse_markdown_document(data: bytes) -> tuple[list[Block], str | None, FrontMatter]:
    """``parse_markdown`` plus the file's front matter (whose ``title`` is not applied)."""
    lines = decode_text(data).split("\n")
    sections = Sections()
    front, start = read_front_matter(lines)
    fence: str | None = None
    for i in range(start, len(lines)):
        line, number = lines[i], i + 1
        m = _FENCE.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            sections.line(number, line)
            continue
        if m:
            fence = m.group(1)
            sections.line(number, line)
            continue
        atx = _ATX.match(line)
        if atx:
            sections.heading(len(atx.group(1)), (atx.group(2) or "").strip(), number, number)
            continue
        underline = line.strip()
        pending = sections.pending
        if (
            underline
            and len(set(underline)) == 1
            and underline[0] in "=-"
            and pending
            and pending[-1].strip()
            and (len(pending) == 1 or not pending[-2].strip())
        ):
            text = sections.pending.pop().strip()
            sections.heading(1 if underline[0] == "=" else 2, text, number - 1, number)
            continue
        sections.line(number, line)
    sections.flush()
    return sections.blocks, sections.title, front
