"""PDF through pypdf: paragraphs per page with their page number; encrypted, corrupt and
text-less files refused with a reason; pypdf imported when a PDF is read."""

from __future__ import annotations

import io
import logging

from ragcli.errors import LoaderError
from ragcli.loaders import ocr
from ragcli.loaders.parsed import Parsed
from ragcli.loaders.pdf_text import clean_pages, read_pages
from ragcli.records import Block

# A PDF page with fewer visible characters than this has, in effect, no text layer.
SPARSE_PAGE_CHARS = 32


def parse_pdf(data: bytes) -> Parsed:
    """PDF via pypdf: one or more blocks per page, each with its 1-based page number."""
    blocks, title, pages = parse_pdf_pages(data)
    # Pages without a text layer are read by OCR when an engine is installed (``ocr``).
    blocks, notes = ocr.read_sparse_pdf_pages(data, blocks, pages, SPARSE_PAGE_CHARS)
    if not any(b.text.strip() for b in blocks):
        raise LoaderError(f"probably scanned: no text layer ({ocr.unread_reason()})")
    read_by_ocr = len({b.page for b in blocks if b.ocr})
    if read_by_ocr:
        notes.insert(0, f"read by OCR: {read_by_ocr} of {pages} page(s)")
    sparse = len(ocr.sparse_pages(blocks, pages, SPARSE_PAGE_CHARS))
    if sparse * 2 > pages:
        notes.append(
            f"probably scanned: {sparse} of {pages} page(s) have almost no text layer; "
            f"only the text found was indexed ({ocr.unread_reason()})"
        )
    return Parsed(blocks, title, pages=pages, notes=notes)


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
    # Per page: plain text, headers/footers dropped, cut words joined, tables as rows.
    per_page, _ = clean_pages(read_pages(pages))
    blocks: list[Block] = [block for page_blocks in per_page for block in page_blocks]
    title = None
    try:
        title = (reader.metadata.title if reader.metadata else None) or None
    except Exception:
        title = None
    return blocks, title, len(pages)
