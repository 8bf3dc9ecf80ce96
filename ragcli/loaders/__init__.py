"""path -> Document: ``load_documents`` (in ``reading``) reads a file once and hands it to its
format's module (``text``, ``markdown``, ``rst``, ``html``, ``pdf``, ``jsonl``, ...), each
keeping pages, line spans and headings in a ``Parsed`` (``parsed``); ``LOADERS`` maps
extensions to formats."""

from ragcli.loaders.code import CODE_LOADERS, parse_code, parse_python
from ragcli.loaders.epub import parse_epub
from ragcli.loaders.html import parse_html
from ragcli.loaders.image import parse_image
from ragcli.loaders.jsonl import parse_jsonl
from ragcli.loaders.mail import parse_eml, parse_mbox
from ragcli.loaders.markdown import (
    FrontMatter,
    iso_seconds,
    normal_tags,
    parse_markdown,
    parse_markdown_document,
)
from ragcli.loaders.notebook import parse_notebook
from ragcli.loaders.office import parse_docx, parse_odt, parse_rtf
from ragcli.loaders.parsed import Attachment, Parsed, open_zip
from ragcli.loaders.pdf import parse_pdf
from ragcli.loaders.reading import (
    LOADERS,
    MAX_FILE_BYTES,
    is_supported,
    load_documents,
    supported_extensions,
    unchanged_file,
)
from ragcli.loaders.rst import parse_rst
from ragcli.loaders.sheets import parse_csv, parse_tsv, parse_xlsx
from ragcli.loaders.slides import parse_pptx
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
    "parse_eml",
    "parse_epub",
    "parse_html",
    "parse_image",
    "parse_mbox",
    "parse_notebook",
    "parse_jsonl",
    "parse_markdown",
    "parse_markdown_document",
    "parse_pdf",
    "parse_rst",
    "parse_docx",
    "parse_odt",
    "parse_pptx",
    "parse_rtf",
    "parse_csv",
    "parse_tsv",
    "parse_xlsx",
    "parse_text",
    "CODE_LOADERS",
    "parse_code",
    "parse_python",
    "supported_extensions",
    "unchanged_file",
]
