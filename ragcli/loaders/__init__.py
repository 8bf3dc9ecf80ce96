"""path -> Document: ``load_documents`` (in ``reading``) reads a file once and hands it to its
format's module (``text``, ``markdown``, ``rst``, ``html``, ``pdf``, ``jsonl``, ...), each
keeping pages, line spans and headings in a ``Parsed`` (``parsed``); ``LOADERS`` maps
extensions to formats."""

from ragcli.loaders.html import parse_html
from ragcli.loaders.jsonl import parse_jsonl
from ragcli.loaders.markdown import (
    FrontMatter,
    iso_seconds,
    normal_tags,
    parse_markdown,
    parse_markdown_document,
)
from ragcli.loaders.parsed import Attachment, Parsed, open_zip
from ragcli.loaders.pdf import parse_pdf
from ragcli.loaders.reading import (
    LOADERS,
    MAX_FILE_BYTES,
    is_supported,
    load_documents,
    supported_extensions,
)
from ragcli.loaders.rst import parse_rst
from ragcli.loaders.text import decode_text, parse_text

__all__ = [
    "LOADERS",
    "Attachment",
    "Parsed",
    "open_zip",
    "MAX_FILE_BYTES",
    "FrontMatter",
    "decode_text",
    "is_supported",
    "iso_seconds",
    "load_documents",
    "normal_tags",
    "parse_html",
    "parse_jsonl",
    "parse_markdown",
    "parse_markdown_document",
    "parse_pdf",
    "parse_rst",
    "parse_text",
    "supported_extensions",
]
