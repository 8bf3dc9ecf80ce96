"""Which documents a search may return: the ``Filters`` record and the one parser of what a
user types for it (``--path``, ``--after``, ``--before``, ``--type``, ``--tag`` on the command
line; the same fields of a server request), shared so both refuse the same values alike.

The stores apply a ``Filters`` inside their searches (dense and lexical alike), never after.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from ragcli.errors import UsageError
from ragcli.loaders import LOADERS, iso_seconds, normal_tags

# Ages accepted by --after/--before: a whole number of hours, days or weeks before now.
# No months or years (their length varies) and no "m" (minutes or months?).
AGE_UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"^(\d+)\s*([hdw])$")
DATE_HINT = (
    "use an ISO date or time (2024-05-01, 2024-05-01T14:30, 2024-05-01T14:30+02:00; UTC "
    "unless an offset is given) or an age: 12h, 30d, 2w"
)

# What --type accepts: each loader's extension and format name, mapped to the format the
# documents table stores ("md" and "markdown" -> "markdown", "txt" -> "text", "htm" -> "html").
TYPES: dict[str, str] = {
    **{extension.lstrip("."): fmt for extension, (fmt, _) in LOADERS.items()},
    **{fmt: fmt for fmt, _ in LOADERS.values()},
    "jsonl": "jsonl",
}


@dataclass(frozen=True)
class Filters:
    """Documents a search may return; every given condition must hold (an empty one: all).

    ``after``/``before`` are seconds since the epoch compared with the document's date (its
    Markdown front matter's ``date``, else its file's modification time): ``after`` <= date <
    ``before``. ``formats`` and ``tags`` match when the document has any of them.
    """

    source_glob: str | None = None
    after: float | None = None
    before: float | None = None
    formats: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        limits = (self.source_glob, self.after, self.before)
        return any(v is not None for v in limits) or bool(self.formats or self.tags)

    def describe(self) -> str:
        """The filters in words, for messages: ``path 'docs/*', type pdf, tag a or b``."""
        parts = []
        if self.source_glob is not None:
            parts.append(f"path {self.source_glob!r}")
        if self.after is not None:
            parts.append(f"after {_stamp(self.after)}")
        if self.before is not None:
            parts.append(f"before {_stamp(self.before)}")
        if self.formats:
            parts.append("type " + " or ".join(self.formats))
        if self.tags:
            parts.append("tag " + " or ".join(self.tags))
        return ", ".join(parts) or "none"


def _stamp(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    if moment.time() == datetime.min.time():
        return moment.date().isoformat()
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_filters(
    path: str | None = None,
    after: str | None = None,
    before: str | None = None,
    types: Iterable[str] = (),
    tags: Iterable[str] = (),
    prefix: str = "--",
    now: float | None = None,
) -> Filters | None:
    """Filters from what a user gave (None when nothing was); UsageError naming the flag (or,
    with ``prefix=""``, the request field) for a value that cannot be one."""
    now = time.time() if now is None else now
    if path is not None and not path.strip():
        raise UsageError(f"{prefix}path must be a glob such as 'docs/*.md'")
    start = parse_date(after, f"{prefix}after", now) if after is not None else None
    end = parse_date(before, f"{prefix}before", now) if before is not None else None
    if start is not None and end is not None and start >= end:
        raise UsageError(
            f"{prefix}after {after} is not earlier than {prefix}before {before}: "
            "no document can match",
            f"{prefix}after keeps documents dated at or after it, {prefix}before those "
            "dated before it",
        )
    filters = Filters(
        source_glob=path,
        after=start,
        before=end,
        formats=parse_types(types, f"{prefix}type"),
        tags=parse_tags(tags, f"{prefix}tag"),
    )
    return filters or None


def parse_date(value: str, name: str = "--after", now: float | None = None) -> float:
    """Seconds since the epoch for an ISO date or time (naive means UTC) or an age (``30d``:
    30 days before ``now``)."""
    text = value.strip()
    age = _AGE.match(text.lower())
    if age:
        now = time.time() if now is None else now
        return now - int(age.group(1)) * AGE_UNITS[age.group(2)]
    moment = iso_seconds(text)
    if moment is None:
        raise UsageError(f"{name} {value!r} is not a date", DATE_HINT)
    return moment


def parse_types(values: Iterable[str], name: str = "--type") -> tuple[str, ...]:
    """Stored formats for type names or extensions (comma-separated or several)."""
    given = list(values)
    found: dict[str, None] = {}
    for part in (p.strip() for value in given for p in value.split(",")):
        word = part.lower().lstrip(".")
        if word and word not in TYPES:
            hint = f"use one of: {', '.join(sorted(TYPES))}"
            raise UsageError(f"unknown document type {part!r} ({name})", hint)
        if word:
            found.setdefault(TYPES[word], None)
    if given and not found:
        raise UsageError(f"{name} needs a type", f"e.g. {name} pdf,md")
    return tuple(found)


def parse_tags(values: Iterable[str], name: str = "--tag") -> tuple[str, ...]:
    """Tags to match (comma-separated or several), in lower case as they are stored."""
    given = list(values)
    tags = normal_tags(given)
    if given and not tags:
        raise UsageError(f"{name} needs a tag", f"e.g. {name} release-notes")
    return tags
