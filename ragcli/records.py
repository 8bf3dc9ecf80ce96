"""Plain records passed between the pipeline steps; each knows how to become JSON."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Bumped when a field of the JSON output changes meaning or goes away (adding one does not).
ANSWER_SCHEMA_VERSION = 1
SEARCH_SCHEMA_VERSION = 1


@dataclass
class Block:
    """A run of text from a loader (a paragraph, a list item, a PDF page) and where it sits."""

    text: str
    page: int | None = None  # 1-based: a PDF's page, a slide, an image's frame
    line_start: int | None = None  # 1-based, inclusive: text lines, or a sheet's rows
    line_end: int | None = None
    heading: str | None = None  # the heading path the block sits under ("Setup > Linux")
    is_heading: bool = False  # the block is the heading line itself
    whole: bool = False  # never cut inside (a spreadsheet row, a line of code): one unit
    ocr: bool = False  # the text was read from an image by OCR


@dataclass
class Document:
    """One input file as loaded: its identity, format and text blocks."""

    path: Path  # absolute path of the file that holds the document
    source: str  # how the document is shown and cited
    format: str  # the loader's format name: "text", "markdown", "pdf", "docx", "xlsx", ...
    blocks: list[Block]
    sha256: str  # of the whole file
    size: int
    mtime: float
    title: str | None = None
    key: str = ""  # unique in a collection: the path, or "path#id" for one record of a .jsonl
    doc_id: str = ""  # the id evaluations match: a .jsonl record's _id, else the relative path
    notes: list[str] = field(default_factory=list)  # what the loader doubts but read anyway
    date: float | None = None  # a Markdown front matter's date (epoch seconds), else None
    tags: list[str] = field(default_factory=list)  # a Markdown front matter's, in lower case
    pages: int | None = None  # pages, slides or sheets the file has, where it has such units

    def __post_init__(self) -> None:
        self.key = self.key or str(self.path)
        self.doc_id = self.doc_id or self.path.name

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks)

    @property
    def ocr_pages(self) -> list[int]:
        """The pages whose text OCR read (an image file's is page 1)."""
        return sorted({b.page or 1 for b in self.blocks if b.ocr})


@dataclass
class Chunk:
    """A piece of a document sized for the embedder, with a deterministic id."""

    key: str
    ordinal: int
    text: str
    n_tokens: int
    page: int | None = None
    line_start: int | None = None
    line_end: int | None = None
    heading: str | None = None


# Formats whose ``page`` is a slide, and those whose lines are a sheet's rows.
SLIDE_FORMATS = frozenset({"pptx"})
ROW_FORMATS = frozenset({"xlsx", "csv", "tsv"})


def location_label(
    page: int | None,
    line_start: int | None,
    line_end: int | None,
    format: str = "",
    ocr: bool = False,
) -> str:
    """Human form of a chunk's position: ``p.3``, ``slide 2``, ``lines 4-9``, ``rows 2-30``,
    ``frame 2`` (a TIFF's), with ``, OCR`` when its text was read from an image; or ``""``."""
    label = ""
    if format == "image":  # a picture; a multi-frame TIFF's later frames
        label = f"frame {page}" if page and page > 1 else ""
    elif page is not None:
        label = f"slide {page}" if format in SLIDE_FORMATS else f"p.{page}"
    elif line_start is not None:
        unit = "row" if format in ROW_FORMATS else "line"
        if line_end is None or line_end == line_start:
            label = f"{unit} {line_start}"
        else:
            label = f"{unit}s {line_start}-{line_end}"
    if ocr:
        label = f"{label}, OCR" if label else "OCR"
    return label


@dataclass
class Hit:
    """A retrieved chunk with its score and rank."""

    rank: int
    score: float
    text: str
    source: str
    chunk_key: str
    page: int | None = None
    line_start: int | None = None
    line_end: int | None = None
    heading: str | None = None
    doc_id: str = ""
    row_id: int = 0  # the chunk's row in its store (the JSON "chunk_id" is ``chunk_key``)
    ordinal: int = 0  # the chunk's position in its document
    explain: dict[str, Any] | None = None  # per-method ranks and scores, when asked for
    similarity: float | None = None  # cosine of passage and question, when retrieval embedded it
    format: str = ""  # the document's format ("pdf", "pptx", ...)
    ocr: bool = False  # the text was read from an image by OCR

    @property
    def location(self) -> str:
        return location_label(self.page, self.line_start, self.line_end, self.format, self.ocr)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "source": self.source,
            "page": self.page,
            "lines": [self.line_start, self.line_end] if self.line_start is not None else None,
            "heading": self.heading,
            "location": self.location,
            "format": self.format,
            "ocr": self.ocr,
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_key,
            "text": self.text,
            **({"explain": self.explain} if self.explain is not None else {}),
        }


@dataclass
class SkippedFile:
    """An input that ingest could not use, and why."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "reason": self.reason}


@dataclass
class FileReport:
    """What ingest read of one file (a line of ``ingest --report``)."""

    source: str
    status: str  # "added", "updated", "unchanged" (not read again) or "skipped"
    format: str | None = None
    documents: int = 0  # the file, its records and its attachments
    pages: int | None = None  # pages, slides or sheets, where the format has them
    sections: int = 0  # distinct heading paths
    characters: int = 0
    characters_per_page: int | None = None
    empty_pages: int | None = None  # pages with no text at all (after OCR, where it ran)
    ocr_pages: int = 0
    garbled: float = 0.0  # share of words that look garbled (see quality.garbled_share)
    chunks: int = 0
    warnings: list[str] = field(default_factory=list)  # or the reason it was skipped
    seconds: float = 0.0  # reading and chunking

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class IngestReport:
    """What an ingest did (or, with ``dry_run``, would do)."""

    collection: str
    dry_run: bool = False
    rebuilt: bool = False  # the collection was built anew and swapped in (--rebuild)
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # gone from a folder ingested again
    skipped: list[SkippedFile] = field(default_factory=list)
    warnings: list[SkippedFile] = field(default_factory=list)  # ingested, with a doubt
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_reused: int = 0  # of those added, whose vectors came from the embedding cache
    seconds: float = 0.0
    # The chunks of each file added or updated (what `ingest --watch` says of each change)
    chunks_of: dict[str, int] = field(default_factory=dict)
    files: list[FileReport] = field(default_factory=list)  # one per file seen, in order

    @property
    def files_seen(self) -> int:
        return len(self.added) + len(self.updated) + len(self.unchanged) + len(self.skipped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "dry_run": self.dry_run,
            "rebuilt": self.rebuilt,
            "files": {
                "seen": self.files_seen,
                "added": len(self.added),
                "updated": len(self.updated),
                "unchanged": len(self.unchanged),
                "removed": len(self.removed),
                "skipped": len(self.skipped),
                "warnings": len(self.warnings),
            },
            "chunks": {
                "added": self.chunks_added,
                "removed": self.chunks_removed,
                "reused": self.chunks_reused,
            },
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "skipped": [s.to_dict() for s in self.skipped],
            "warnings": [w.to_dict() for w in self.warnings],
            "seconds": round(self.seconds, 3),
        }


def utc_time(seconds: float | None) -> str | None:
    """Seconds since the epoch as ISO 8601 UTC (``2026-11-29T10:04:05Z``), as JSON shows times."""
    if seconds is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@dataclass
class StaleSource:
    """A source whose file changed (size or mtime) since it was ingested, or is gone."""

    source: str
    path: str  # the file (a .jsonl record's is the .jsonl)
    reason: str  # "changed" or "missing"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "path": self.path, "reason": self.reason}


@dataclass
class SearchResult:
    """Hits for one question."""

    question: str
    collection: str
    embedder: str
    hits: list[Hit]
    mode: str = "dense"
    timings: dict[str, float] = field(default_factory=dict)
    updated_at: float | None = None  # the collection's last commit (seconds since the epoch)
    stale_sources: list[StaleSource] = field(default_factory=list)  # of the hits

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SEARCH_SCHEMA_VERSION,
            "question": self.question,
            "collection": self.collection,
            "embedder": self.embedder,
            "mode": self.mode,
            "hits": [h.to_dict() for h in self.hits],
            "updated_at": utc_time(self.updated_at),
            "stale_sources": [s.to_dict() for s in self.stale_sources],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


@dataclass
class Citation:
    """A passage marker ``[n]`` the answer used, resolved to its passage."""

    marker: int
    hit: Hit

    def to_dict(self) -> dict[str, Any]:
        return {"marker": self.marker, **self.hit.to_dict()}


@dataclass
class Answer:
    """A generated (or withheld) answer, the passages it was given and how it checked out."""

    question: str
    text: str
    collection: str
    embedder: str
    generator: str
    passages: list[Hit]
    citations: list[Citation]
    unknown_markers: list[int] = field(default_factory=list)
    sentences: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    abstained: bool = False
    # "weak retrieval", "model declined", "unsupported", "not verified" or "low confidence"
    abstain_reason: str | None = None
    evidence: float = 0.0  # best cosine between the question and a retrieved passage
    # The generator's probability that the passages state the answer to the question (asked
    # "yes or no" after answering); None where not asked or not available.
    verified: float | None = None
    # The probability that the answer is right, from evidence and verification
    # (ragcli/abstention.py); None when not generated, or withheld by its own checks.
    confidence: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    tokens: int = 0
    engine: str | None = None  # what ran the generator, e.g. "xllamacpp 2026.10.11549"
    # What retrieval searched for instead of the question: a follow-up rewritten to stand
    # alone, or ``--query``; None when it searched for the question itself.
    rewritten_query: str | None = None
    updated_at: float | None = None  # the collection's last commit (seconds since the epoch)
    # Of the cited passages' sources (of the passages given, when withheld)
    stale_sources: list[StaleSource] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": ANSWER_SCHEMA_VERSION,
            "question": self.question,
            "rewritten_query": self.rewritten_query,
            "answer": self.text,
            "abstained": self.abstained,
            "abstain_reason": self.abstain_reason,
            "citations": [c.to_dict() for c in self.citations],
            "unknown_markers": self.unknown_markers,
            "sentences": self.sentences,
            "passages": [h.to_dict() for h in self.passages],
            "dropped": self.dropped,
            "evidence": round(self.evidence, 4),
            "verified": round(self.verified, 4) if self.verified is not None else None,
            "confidence": round(self.confidence, 4) if self.confidence is not None else None,
            "collection": self.collection,
            "models": {
                "embedder": self.embedder,
                "generator": self.generator,
                "engine": self.engine,
            },
            "tokens": self.tokens,
            "updated_at": utc_time(self.updated_at),
            "stale_sources": [s.to_dict() for s in self.stale_sources],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }
