"""What ingest read of a file, in figures: pages, characters per page, empty and OCR'd pages,
the share of garbled words, chunks and warnings (``ingest --report``). No I/O."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from ragcli.records import Chunk, Document, FileReport

# UTF-8 read as Windows-1252 ("Ã©", "â€™"): the commonest mojibake.
_MOJIBAKE = re.compile("[ÃÂâ][\u0080-\u00bf\u20ac\u2122\u0153\u201a-\u201e\u2018-\u201d]")
_EDGE = "\"'`.,;:!?()[]{}<>«»“”‘’*_"
# Unassigned, private-use, surrogate and control characters (other than white space).
_BAD_CATEGORIES = {"Cn", "Co", "Cs", "Cc"}


def garbled_share(text: str) -> float:
    """The share of words that look garbled: a replacement or private-use character,
    mojibake, a run of unrelated symbols, a long Latin word without a vowel, or case that flips
    inside a word ("tHiS"). A rough signal, made for text extracted from PDFs and scans."""
    words = text.split()
    if not words:
        return 0.0
    return sum(1 for w in words if _looks_garbled(w)) / len(words)


def _looks_garbled(word: str) -> bool:
    if "\ufffd" in word or any(unicodedata.category(c) in _BAD_CATEGORIES for c in word):
        return True
    if _MOJIBAKE.search(word):
        return True
    core = word.strip(_EDGE)
    if not core:
        return False
    symbols = {c for c in core if not c.isalnum()}
    if len(symbols) >= 3 and sum(c.isalnum() for c in core) < len(core) / 2:
        return True
    if core.isascii() and core.isalpha() and len(core) >= 6:
        if not any(v in core.lower() for v in "aeiouy"):
            return True
        flips = sum(1 for a, b in zip(core, core[1:]) if a.islower() and b.isupper())
        if flips >= 2:
            return True
    return False


def file_report(
    source: str,
    status: str,
    documents: Sequence[Document],
    chunks: Sequence[Sequence[Chunk]],
    seconds: float,
) -> FileReport:
    """The figures of one file read into ``documents`` (its first is the file itself)."""
    first = documents[0]
    text = "\n".join(b.text for d in documents for b in d.blocks)
    pages = first.pages
    paged = [b for b in first.blocks if b.page is not None]
    with_text = {b.page for b in paged if b.text.strip()}
    empty = max(pages - len(with_text), 0) if pages and paged else None
    ocr = first.ocr_pages
    sections = {b.heading for d in documents for b in d.blocks if b.heading}
    notes = list(dict.fromkeys(n for d in documents for n in d.notes))
    return FileReport(
        source=source,
        status=status,
        format=first.format,
        documents=len(documents),
        pages=pages,
        sections=len(sections),
        characters=len(text),
        characters_per_page=round(len(first.text) / pages) if pages else None,
        empty_pages=empty,
        ocr_pages=len(ocr),
        garbled=round(garbled_share(text), 4),
        chunks=sum(len(c) for c in chunks),
        warnings=notes,
        seconds=round(seconds, 3),
    )
