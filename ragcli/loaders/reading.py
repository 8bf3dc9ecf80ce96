"""path -> Documents: a file read once, checked, and handed to its format's parser."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from ragcli.errors import LoaderError
from ragcli.loaders.html import parse_html
from ragcli.loaders.jsonl import parse_jsonl
from ragcli.loaders.markdown import FrontMatter, parse_markdown, parse_markdown_document
from ragcli.loaders.pdf import parse_pdf, parse_pdf_pages
from ragcli.loaders.rst import parse_rst
from ragcli.loaders.text import parse_text
from ragcli.records import Block, Document

MAX_FILE_BYTES = 200 * 1024 * 1024  # the default of the max_file_mb setting
# A PDF page with fewer visible characters than this has, in effect, no text layer.
SPARSE_PAGE_CHARS = 32


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


def is_supported(path: Path) -> bool:
    """Whether a loader exists for the file's extension."""
    return path.suffix.lower() in LOADERS or path.suffix.lower() == ".jsonl"


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
