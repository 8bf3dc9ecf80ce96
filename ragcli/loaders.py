"""path -> Document: one function per format, each keeping pages, line spans and headings."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from ragcli.errors import LoaderError
from ragcli.records import Block, Document

MAX_FILE_BYTES = 200 * 1024 * 1024  # the default of the max_file_mb setting
# A PDF page with fewer visible characters than this has, in effect, no text layer.
SPARSE_PAGE_CHARS = 32

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_RST_ADORNMENT = re.compile(r"^([=\-`:'\"~^_*+#<>.!$%&,/;?@\[\]\\{|}()])\1{2,}\s*$")
_WS = re.compile(r"\s+")
# C0 controls other than tab, line feed, vertical tab, form feed and carriage return; DEL; C1.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def load_documents(
    path: Path, source: str, doc_id: str | None = None, max_bytes: int = MAX_FILE_BYTES
) -> list[Document]:
    """Read one file, once, into Documents (one, or one per record of a ``.jsonl`` corpus).

    Raises LoaderError, and nothing else, saying why the file cannot be used.
    """
    suffix = path.suffix.lower()
    if suffix not in LOADERS and suffix != ".jsonl":
        raise LoaderError(f"unsupported file type {path.suffix or '(no extension)'!r}")
    try:
        stat = path.stat()
        if stat.st_size > max_bytes:
            raise LoaderError(
                f"file too large ({_mib(stat.st_size)}; the limit is {_mib(max_bytes)}, "
                "setting max_file_mb)"
            )
        data = path.read_bytes()
    except PermissionError as e:
        raise LoaderError("permission denied") from e
    except OSError as e:
        raise LoaderError(f"cannot read: {e.strerror or e}") from e
    if not data.strip():
        raise LoaderError("empty file")
    try:
        return _parse(path, source, doc_id, suffix, data, stat)
    except LoaderError:
        raise
    except Exception as e:  # a parser's bug or limit must cost this file, not the ingest
        raise LoaderError(f"cannot parse this file ({type(e).__name__}: {e})") from e


def _parse(
    path: Path, source: str, doc_id: str | None, suffix: str, data: bytes, stat: os.stat_result
) -> list[Document]:
    sha256 = hashlib.sha256(data).hexdigest()
    if suffix == ".jsonl":
        return [
            Document(
                path=path,
                source=f"{source}#{record_id}",
                format="jsonl",
                blocks=blocks,
                sha256=sha256,
                size=stat.st_size,
                mtime=stat.st_mtime,
                title=title,
                key=f"{path}#{record_id}",
                doc_id=record_id,
            )
            for record_id, title, blocks in parse_jsonl(data)
        ]
    fmt, parse = LOADERS[suffix]
    notes: list[str] = []
    front = FrontMatter()
    if fmt == "pdf":
        blocks, title, pages = parse_pdf_pages(data)
        visible: dict[int | None, int] = {}
        for b in blocks:
            visible[b.page] = visible.get(b.page, 0) + _visible(b.text)
        sparse = pages - sum(1 for n in visible.values() if n >= SPARSE_PAGE_CHARS)
        if sparse * 2 > pages:
            notes.append(
                f"probably scanned: {sparse} of {pages} page(s) have almost no text layer; "
                "only the text found was indexed"
            )
    elif fmt == "markdown":
        blocks, title, front = parse_markdown_document(data)
    else:
        blocks, title = parse(data)
    blocks = [b for b in blocks if b.text.strip()]
    if not blocks:
        raise LoaderError("no text found")
    return [
        Document(
            path=path,
            source=source,
            format=fmt,
            blocks=blocks,
            sha256=sha256,
            size=stat.st_size,
            mtime=stat.st_mtime,
            title=front.title or title,
            doc_id=doc_id or path.name,
            notes=notes,
            date=front.date,
            tags=list(front.tags),
        )
    ]


def _visible(text: str) -> int:
    return len(text) - sum(text.count(c) for c in " \t\n")


def parse_jsonl(data: bytes) -> list[tuple[str, str | None, list[Block]]]:
    """A corpus in BEIR shape: one ``{"_id", "title", "text"}`` object per line."""
    records: list[tuple[str, str | None, list[Block]]] = []
    seen: set[str] = set()
    for number, line in enumerate(decode_text(data).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise LoaderError(f"line {number}: invalid JSON ({e})") from e
        except RecursionError as e:
            raise LoaderError(f"line {number}: JSON nested too deeply") from e
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise LoaderError(f'line {number}: not a corpus record (no "text" field)')
        record_id = str(record.get("_id", record.get("id", number)))
        if record_id in seen:
            raise LoaderError(f"line {number}: duplicate id {record_id!r}")
        seen.add(record_id)
        title = str(record.get("title") or "").strip() or None
        blocks = [Block(title, heading=title, is_heading=True)] if title else []
        for paragraph in re.split(r"\n\s*\n", record["text"]):
            if paragraph.strip():
                blocks.append(Block(paragraph.strip(), heading=title))
        if any(not b.is_heading for b in blocks):
            records.append((record_id, title, blocks))
    if not records:
        raise LoaderError("no record with text")
    return records


def is_supported(path: Path) -> bool:
    """Whether a loader exists for the file's extension."""
    return path.suffix.lower() in LOADERS or path.suffix.lower() == ".jsonl"


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


def _paragraphs(
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
    return _paragraphs(decode_text(data).split("\n"), 1, None), None


class _Sections:
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
        self.blocks += _paragraphs(self.pending, self.pending_start, self.path)
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


def parse_markdown_document(data: bytes) -> tuple[list[Block], str | None, FrontMatter]:
    """``parse_markdown`` plus the file's front matter (whose ``title`` is not applied)."""
    lines = decode_text(data).split("\n")
    sections = _Sections()
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


def parse_rst(data: bytes) -> tuple[list[Block], str | None]:
    """reStructuredText: section titles (underlined, optionally overlined) set the heading."""
    lines = decode_text(data).split("\n")
    sections = _Sections()
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


_HTML_SKIP = {"script", "style", "noscript", "template", "svg", "head", "iframe", "object"}
_HTML_BLOCKS = {
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
    "h4", "h5", "h6", "header", "html", "legend", "li", "main", "nav", "ol", "p", "pre",
    "section", "summary", "table", "td", "th", "tr", "ul",
}  # fmt: skip
_HTML_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


def parse_html(data: bytes) -> tuple[list[Block], str | None]:
    """HTML: visible text only, one block per block-level element, headings tracked."""
    from bs4 import BeautifulSoup, NavigableString
    from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

    soup = BeautifulSoup(decode_text(data), "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    for tag in soup.find_all(list(_HTML_SKIP)):
        tag.decompose()
    skip_types = (Comment, Declaration, Doctype, ProcessingInstruction)
    groups: list[tuple[Any, list[str]]] = []
    for s in soup.find_all(string=True):
        if not isinstance(s, NavigableString) or isinstance(s, skip_types):
            continue
        block = next((p for p in s.parents if p.name in _HTML_BLOCKS), soup)
        if groups and groups[-1][0] is block:
            groups[-1][1].append(str(s))
        else:
            groups.append((block, [str(s)]))
    sections = _Sections()
    sections.title = title
    for node, strings in groups:
        raw = "".join(strings)
        text = _WS.sub(" ", raw).strip()
        if not text:
            continue
        start = getattr(node, "sourceline", None) or 1
        end = start + raw.strip().count("\n")
        name = getattr(node, "name", None)
        if name in _HTML_HEADINGS:
            sections.heading(_HTML_HEADINGS[name], text, start, end)
        else:
            sections.blocks.append(
                Block(text, line_start=start, line_end=end, heading=sections.path)
            )
    return sections.blocks, title


def parse_pdf(data: bytes) -> tuple[list[Block], str | None]:
    """PDF via pypdf: one or more blocks per page, each with its 1-based page number."""
    blocks, title, _ = parse_pdf_pages(data)
    return blocks, title


def parse_pdf_pages(data: bytes) -> tuple[list[Block], str | None, int]:
    """``parse_pdf`` plus the number of pages."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoaderError("encrypted PDF (a password is needed)")
        pages = list(reader.pages)
    except LoaderError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as e:
        raise LoaderError(f"corrupt or unreadable PDF ({e})") from e
    except Exception as e:  # pypdf raises many types on malformed input
        raise LoaderError(f"corrupt or unreadable PDF ({type(e).__name__}: {e})") from e
    blocks: list[Block] = []
    for number, page in enumerate(pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception:  # one bad page must not lose the others
            continue
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        blocks += _paragraphs(text.split("\n"), 1, None, page=number)
    if not any(b.text.strip() for b in blocks):
        raise LoaderError("probably scanned: no text layer")
    title = None
    try:
        title = (reader.metadata.title if reader.metadata else None) or None
    except Exception:
        title = None
    return blocks, title, len(pages)


Parser = Callable[[bytes], tuple[list[Block], str | None]]

LOADERS: dict[str, tuple[str, Parser]] = {
    ".txt": ("text", parse_text),
    ".text": ("text", parse_text),
    ".md": ("markdown", parse_markdown),
    ".markdown": ("markdown", parse_markdown),
    ".rst": ("rst", parse_rst),
    ".html": ("html", parse_html),
    ".htm": ("html", parse_html),
    ".pdf": ("pdf", parse_pdf),
}


def supported_extensions() -> Iterable[str]:
    """The file extensions ingest reads."""
    return sorted([*LOADERS, ".jsonl"])
