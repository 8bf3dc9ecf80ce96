"""path -> Documents: a file read once, checked, and handed to its format's parser."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from ragcli.errors import LoaderError
from ragcli.loaders.code import CODE_LOADERS
from ragcli.loaders.epub import parse_epub
from ragcli.loaders.html import parse_html
from ragcli.loaders.image import parse_image
from ragcli.loaders.jsonl import parse_jsonl
from ragcli.loaders.mail import parse_eml, parse_mbox
from ragcli.loaders.markdown import parse_markdown_file
from ragcli.loaders.notebook import parse_notebook
from ragcli.loaders.office import parse_docx, parse_odt, parse_rtf
from ragcli.loaders.parsed import Attachment, Parsed
from ragcli.loaders.pdf import parse_pdf
from ragcli.loaders.rst import parse_rst
from ragcli.loaders.sheets import parse_csv, parse_tsv, parse_xlsx
from ragcli.loaders.slides import parse_pptx
from ragcli.loaders.text import parse_text
from ragcli.records import Block, Document

MAX_FILE_BYTES = 200 * 1024 * 1024  # the default of the max_file_mb setting


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
    parsed = as_parsed(parse(data))
    made = _File(path, sha256, stat)
    documents = made.documents(parsed, fmt, source, str(path), doc_id or path.name, depth=0)
    if not documents:
        raise LoaderError(parsed.notes[0] if parsed.notes else "no text found")
    return documents


def unchanged_file(path: Path, source: str, sha256: str) -> Document | None:
    """A stand-in document (no text) for a file whose bytes still hash to ``sha256``, found
    without parsing it (a touched scan is not read by OCR again); None when it changed or
    cannot be read (then loading it says why)."""
    digest = hashlib.sha256()
    try:
        stat = path.stat()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(2**20), b""):
                digest.update(block)
    except OSError:
        return None
    if digest.hexdigest() != sha256:
        return None
    return Document(
        path=path, source=source, format="", blocks=[], sha256=sha256, size=stat.st_size,
        mtime=stat.st_mtime,
    )  # fmt: skip


def as_parsed(result: Parsed | tuple[list[Block], str | None]) -> Parsed:
    """A parser's result as ``Parsed`` (the simple formats return ``(blocks, title)``)."""
    if isinstance(result, Parsed):
        return result
    blocks, title = result
    return Parsed(blocks, title)


# Files inside files (a mail's attachment of a mail) are read this deep, no deeper.
_MAX_DEPTH = 2
# Attached pictures are photos and logos far more often than scanned text, and OCR costs
# seconds each: they are not read (a scanned PDF attached is).
_NOT_ATTACHMENTS = frozenset({"image"})


class _File:
    """Makes the Documents of one file: itself, its records and its attachments."""

    def __init__(self, path: Path, sha256: str, stat: os.stat_result) -> None:
        self.path, self.sha256, self.stat = path, sha256, stat

    def documents(
        self, parsed: Parsed, fmt: str, source: str, key: str, doc_id: str, depth: int
    ) -> list[Document]:
        out: list[Document] = []
        blocks = [b for b in parsed.blocks if b.text.strip()]
        if blocks:
            out.append(
                Document(
                    path=self.path,
                    source=source,
                    format=fmt,
                    blocks=blocks,
                    sha256=self.sha256,
                    size=self.stat.st_size,
                    mtime=self.stat.st_mtime,
                    title=parsed.title,
                    key=key,
                    doc_id=doc_id,
                    notes=list(parsed.notes),
                    date=parsed.date,
                    tags=list(parsed.tags),
                    pages=parsed.pages,
                )
            )
        for record_id, record in parsed.records:
            out += self.documents(
                record, fmt, f"{source}#{record_id}", f"{key}#{record_id}",
                f"{doc_id}#{record_id}", depth,
            )  # fmt: skip
        for attachment in parsed.attachments:
            out += self._attachment(attachment, out, source, key, doc_id, depth)
        return out

    def _attachment(
        self, attachment: Attachment, siblings: list[Document], source: str, key: str,
        doc_id: str, depth: int,
    ) -> list[Document]:  # fmt: skip
        suffix = Path(attachment.name).suffix.lower()
        where = f"attachment {attachment.name!r}"
        if suffix not in LOADERS or LOADERS[suffix][0] in _NOT_ATTACHMENTS:
            return []  # a photo, a logo, a calendar invitation: not a document
        if depth >= _MAX_DEPTH:
            _note(siblings, f"{where} not read: attachments nest deeper than {_MAX_DEPTH}")
            return []
        if not attachment.data.strip():
            _note(siblings, f"{where} is empty")
            return []
        fmt, parse = LOADERS[suffix]
        try:
            parsed = as_parsed(parse(attachment.data))
        except LoaderError as e:
            _note(siblings, f"{where} not read: {e}")
            return []
        except Exception as e:  # a parser's bug or limit costs this attachment only
            _note(siblings, f"{where} not read ({type(e).__name__}: {e})")
            return []
        name = attachment.name.replace("#", "_")
        return self.documents(
            parsed, fmt, f"{source}#{name}", f"{key}#{name}", f"{doc_id}#{name}", depth + 1
        )


def _note(documents: list[Document], note: str) -> None:
    if documents:
        documents[0].notes.append(note)


def is_supported(path: Path) -> bool:
    """Whether a loader exists for the file's extension."""
    return path.suffix.lower() in LOADERS or path.suffix.lower() == ".jsonl"


# A format's parser: the file's bytes -> Parsed, or (blocks, title) for the simple formats.
Parser = Callable[[bytes], "Parsed | tuple[list[Block], str | None]"]

LOADERS: dict[str, tuple[str, Parser]] = {
    ".txt": ("text", parse_text),
    ".text": ("text", parse_text),
    ".md": ("markdown", parse_markdown_file),
    ".markdown": ("markdown", parse_markdown_file),
    ".rst": ("rst", parse_rst),
    ".html": ("html", parse_html),
    ".htm": ("html", parse_html),
    ".pdf": ("pdf", parse_pdf),
    ".docx": ("docx", parse_docx),
    ".odt": ("odt", parse_odt),
    ".rtf": ("rtf", parse_rtf),
    ".pptx": ("pptx", parse_pptx),
    ".png": ("image", parse_image),
    ".jpg": ("image", parse_image),
    ".jpeg": ("image", parse_image),
    ".tif": ("image", parse_image),
    ".tiff": ("image", parse_image),
    ".epub": ("epub", parse_epub),
    ".ipynb": ("ipynb", parse_notebook),
    ".eml": ("eml", parse_eml),
    ".mbox": ("mbox", parse_mbox),
    ".xlsx": ("xlsx", parse_xlsx),
    ".csv": ("csv", parse_csv),
    ".tsv": ("tsv", parse_tsv),
    **CODE_LOADERS,  # source code: .py, .js, .ts, .go, .rs, .java, .c, .cpp, .rb, .sh, ...
}


def supported_extensions() -> Iterable[str]:
    """The file extensions ingest reads."""
    return sorted([*LOADERS, ".jsonl"])
